"""Acoustic FWI (deepwave) and missing-trace interpolation: physics checks, geometry, errors."""

import json

import deepwave
import pytest
import torch

from forward_models import ForwardModel
from forward_models.generators.velocity import velocity_models
from forward_models.seismic import AcousticFWI
from forward_models.trace_interpolation import TraceInterpolation, gap_trace_mask, random_trace_mask

F64 = torch.float64


def _onset(trace: torch.Tensor, frac: float = 0.01) -> int:
    """Index of the first sample whose magnitude reaches ``frac`` of the trace's maximum."""
    a = trace.abs()
    return int(torch.nonzero(a >= frac * a.max())[0])


# ----------------------------------------------------------------------------- AcousticFWI: physics


@pytest.mark.parametrize("c", [1800.0, 4000.0])
def test_direct_wave_arrives_at_distance_over_velocity(c):
    """Homogeneous medium: onset at a receiver = wavelet onset + offset / c, within 3 time steps."""
    op = AcousticFWI((16, 60), nt=300, num_shots=1, num_receivers=60)
    src_col = int(op.source_locations[0, 0, 1])
    data = op(torch.full((1, 1, 16, 60), c, dtype=F64))[0, 0]  # (nt, receivers)
    t0 = _onset(op.wavelet(F64))
    offsets, picks = [], []
    for r in range(60):
        offset = abs(r - src_col) * op.dx
        if offset < 50 or (offset / c + op.peak_time) > 0.8 * op.nt * op.dt:
            continue
        pick = _onset(data[:, r]) - t0
        assert abs(pick - offset / c / op.dt) <= 3, (r, pick, offset / c / op.dt)
        offsets.append(offset)
        picks.append(pick * op.dt)
    # the move-out slope gives the velocity back within 2 %
    o, p = torch.tensor(offsets, dtype=F64), torch.tensor(picks, dtype=F64)
    slope = ((o - o.mean()) * (p - p.mean())).sum() / ((o - o.mean()) ** 2).sum()
    assert abs(1.0 / float(slope) - c) <= 0.02 * c
    assert len(offsets) >= 10


def test_source_receiver_reciprocity():
    """Scalar Green's functions are symmetric: shot at A seen at B equals shot at B seen at A."""
    op = AcousticFWI((30, 40), nt=300, num_shots=2, num_receivers=40)  # sources at columns 0 and 39
    v = velocity_models(1, "curved-fault", size=(30, 40), seed=2, dtype=F64)
    d = op(v)[0]
    a, b = d[0, :, 39], d[1, :, 0]
    assert float((a - b).norm() / a.norm()) < 1e-5


def test_output_layout_is_shot_time_receiver():
    """Our output is deepwave's [shot, receiver, time] with time and receiver swapped, per model."""
    op = AcousticFWI((20, 20), nt=100, num_shots=2, num_receivers=10)
    v = op.example_input(2, seed=1)
    d = op(v)
    out = deepwave.scalar(v[1, 0], op.dx, op.dt, source_amplitudes=op.wavelet(F64).expand(2, 1, 100),
                          source_locations=op.source_locations, receiver_locations=op.receiver_locations,
                          max_vel=op.max_vel, pml_freq=op.freq, courant_number=op.courant_number)
    torch.testing.assert_close(d[1], out.receiver_amplitudes.transpose(1, 2))
    assert not torch.allclose(d[0], d[1])


def test_openfwi_geometry():
    op = AcousticFWI()
    assert op.input_shape == (1, 70, 70) and op.output_shape == (5, 1000, 70)
    assert op.source_locations[:, 0, 1].tolist() == [0, 17, 34, 52, 69]
    assert op.source_locations[:, 0, 0].tolist() == [1] * 5  # 10 m depth
    assert torch.equal(op.receiver_locations[0, :, 1], torch.arange(70))
    assert bool((op.receiver_locations[..., 0] == 1).all())
    w = op.wavelet(F64)
    assert int(w.argmax()) == 100 and abs(float(w.max()) - 1.0) < 1e-12  # peak at 1.5 / 15 Hz


# ----------------------------------------------------------------------------- gradients and cost


def _directional_check(op, seed):
    x = op.example_input(1, seed, F64)
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(x.shape, generator=g, dtype=F64)
    v = v / v.norm() * x.norm()
    w = torch.randn(1, *op.output_shape, generator=g, dtype=F64)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((op(xg) * w).sum(), xg)
    h = 1e-6
    fd = float(((op(x + h * v) - op(x - h * v)) * w).sum()) / (2 * h)
    return float((grad * v).sum()), fd


def test_gradient_is_the_exact_discrete_adjoint_with_one_internal_step():
    op = AcousticFWI((20, 20), nt=150, num_shots=2, num_receivers=10, freq=20.0)
    assert op.step_ratio == 1
    for seed in (0, 1):
        ad, fd = _directional_check(op, seed)
        assert abs(ad - fd) <= 1e-7 * abs(fd), (ad, fd)


def test_gradient_with_two_internal_steps_is_close():
    """deepwave's default Courant number 0.6 takes two internal steps: gradient quadrature ~1e-5."""
    op = AcousticFWI((20, 20), nt=150, num_shots=2, num_receivers=10, freq=20.0, courant_number=0.6)
    assert op.step_ratio == 2
    ad, fd = _directional_check(op, 0)
    assert abs(ad - fd) <= 1e-3 * abs(fd), (ad, fd)


@pytest.mark.parametrize("courant", [0.7, 0.6])
def test_cost_does_not_depend_on_the_velocities(courant):
    """Slow and fast media run with the same internal time step (set by max_vel, not the sample)."""
    op = AcousticFWI((12, 12), nt=20, num_shots=1, num_receivers=4, courant_number=courant)
    infos = []
    for c in (1600.0, 4400.0):
        op(torch.full((1, 1, 12, 12), c))
        infos.append(op.last_run_info)
    assert infos[0].step_ratio == infos[1].step_ratio == op.step_ratio
    assert infos[0].internal_dt == infos[1].internal_dt
    assert infos[0].max_vel == infos[1].max_vel == 4500.0


def test_without_max_vel_deepwave_would_adapt_the_step_to_the_sample():
    """Why max_vel is pinned: deepwave's default choice follows the model's own maximum."""
    ratios = []
    for c in (1600.0, 4400.0):
        out = deepwave.scalar(torch.full((12, 12), c), 10.0, 1e-3, source_amplitudes=torch.ones(1, 1, 5),
                              source_locations=torch.tensor([[[1, 5]]]), pml_freq=15.0)
        ratios.append(out.info.step_ratio)
    assert ratios[0] != ratios[1]


def test_float32_agrees_with_float64():
    op = AcousticFWI((20, 20), nt=150, num_shots=2, num_receivers=10)
    x = op.example_input(1, 0, F64)
    y64, y32 = op(x), op(x.float())
    assert y32.dtype == torch.float32
    assert float((y32.double() - y64).norm() / y64.norm()) < 1e-4


# ----------------------------------------------------------------------------- AcousticFWI: inputs and config


def test_example_input_is_layered_and_in_range():
    op = AcousticFWI((20, 30), nt=10, num_shots=1, num_receivers=3)
    x = op.example_input(5, seed=4)
    assert x.shape == (5, 1, 20, 30) and x.dtype == F64
    assert float(x.min()) >= 1500.0 and float(x.max()) < op.max_vel
    assert bool((x == x[..., :1]).all())  # flat layers: constant along each row
    torch.testing.assert_close(x, op.example_input(5, seed=4))
    small = AcousticFWI((20, 30), nt=10, num_shots=1, num_receivers=3, max_vel=3000.0)
    assert float(small.example_input(5, seed=4).max()) < 3000.0


@pytest.mark.parametrize("bad, match", [(5000.0, "max_vel=4500"), (0.0, r"\(0, max_vel"), (-1500.0, "m/s")])
def test_velocities_out_of_range_are_refused(bad, match):
    op = AcousticFWI((12, 12), nt=10, num_shots=1, num_receivers=2)
    x = torch.full((1, 1, 12, 12), 2000.0)
    x[0, 0, 5, 5] = bad
    with pytest.raises(ValueError, match=match):
        op(x)


def test_nan_and_shape_errors_name_the_problem():
    op = AcousticFWI((12, 12), nt=10, num_shots=1, num_receivers=2)
    x = torch.full((1, 1, 12, 12), 2000.0)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        op(x)
    with pytest.raises(ValueError, match="must have shape"):
        op(torch.full((1, 12, 12), 2000.0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(shape=(70,)), "shape"), (dict(num_receivers=71), "num_receivers=71"), (dict(nt=0), "nt"),
    (dict(source_depth=800.0), "source_depth"), (dict(dx=-10.0), "dx"), (dict(courant_number=0.9), "courant_number"),
    (dict(accuracy=3), "accuracy"), (dict(max_vel=float("nan")), "max_vel"),
])
def test_bad_configuration_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AcousticFWI(**kwargs)


def test_config_rebuilds_the_operator():
    op = AcousticFWI((20, 24), nt=50, num_shots=3, num_receivers=8, freq=12.0, receiver_depth=20.0)
    cfg = json.loads(json.dumps(op.config()))
    args = {k: cfg[k] for k in ("dx", "dt", "nt", "num_shots", "num_receivers", "source_depth", "receiver_depth",
                                "freq", "peak_time", "max_vel", "pml_width", "accuracy", "courant_number")}
    clone = AcousticFWI(tuple(cfg["shape"]), **args)
    x = op.example_input(1, 0)
    torch.testing.assert_close(clone(x), op(x))
    assert isinstance(op, ForwardModel) and not op.linear and op.differentiable


# ----------------------------------------------------------------------------- trace masks


@pytest.mark.parametrize("n, frac", [(70, 0.5), (70, 0.3), (11, 0.0), (11, 1.0), (10, 0.25)])
def test_random_trace_mask_has_the_requested_fraction(n, frac):
    m = random_trace_mask(n, frac, seed=3)
    assert m.shape == (n,) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert int((m == 0).sum()) == round(frac * n)
    assert torch.equal(m, random_trace_mask(n, frac, seed=3))


def test_random_trace_mask_depends_on_the_seed():
    assert not torch.equal(random_trace_mask(70, 0.5, seed=0), random_trace_mask(70, 0.5, seed=1))


def test_gap_trace_mask_is_one_consecutive_gap():
    m = gap_trace_mask(70, 12, start=20)
    missing = torch.nonzero(m == 0).flatten()
    assert missing.tolist() == list(range(20, 32))
    centred = torch.nonzero(gap_trace_mask(70, 10) == 0).flatten()
    assert centred.tolist() == list(range(30, 40))
    assert bool((gap_trace_mask(5, 0) == 1).all())


@pytest.mark.parametrize("call, match", [
    (lambda: random_trace_mask(10, 1.5, 0), "fraction_missing"),
    (lambda: random_trace_mask(0, 0.5, 0), "num_receivers"),
    (lambda: gap_trace_mask(10, 11), "gap_width"), (lambda: gap_trace_mask(10, 4, start=8), "within the 10 receivers"),
])
def test_bad_mask_arguments_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- TraceInterpolation


def test_trace_interpolation_zeroes_whole_receiver_columns():
    mask = random_trace_mask(12, 0.5, seed=1)
    op = TraceInterpolation(mask, nt=30, num_shots=3)
    assert op.input_shape == op.output_shape == (3, 30, 12)
    x = torch.randn(2, 3, 30, 12, dtype=F64)
    y = op(x)
    gone, kept = mask == 0, mask == 1
    assert bool((y[..., gone] == 0).all())
    torch.testing.assert_close(y[..., kept], x[..., kept])


def test_per_shot_masks():
    mask = torch.stack([gap_trace_mask(8, 2, start=0), gap_trace_mask(8, 3, start=5)])
    op = TraceInterpolation(mask, nt=4)
    y = op(torch.ones(1, 2, 4, 8))
    assert y[0, 0, 0].tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    assert y[0, 1, 0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]


@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_trace_interpolation_pseudo_inverse(damping):
    op = TraceInterpolation(random_trace_mask(10, 0.4, seed=0), nt=6, num_shots=2)
    y = op(torch.randn(3, 2, 6, 10, dtype=F64))
    closed = op.pseudo_inverse(y, damping=damping)
    torch.testing.assert_close(closed, y / (1 + damping))
    torch.testing.assert_close(ForwardModel.pseudo_inverse(op, y, damping=damping), closed)


def test_fwi_gathers_feed_trace_interpolation():
    fwi = AcousticFWI((20, 20), nt=60, num_shots=2, num_receivers=10)
    op = TraceInterpolation(gap_trace_mask(10, 3), nt=60, num_shots=2)
    y = op(fwi(fwi.example_input(1, 0)))
    assert y.shape == (1, 2, 60, 10) and bool((y[..., 3:6] == 0).all())


@pytest.mark.parametrize("kwargs, match", [
    (dict(mask=torch.tensor([0.0, 0.5, 1.0]), nt=4), "only 0"),
    (dict(mask=torch.ones(2, 3, 4), nt=4), "mask must be"),
    (dict(mask=torch.ones(2, 3), nt=4, num_shots=3), "num_shots=3"),
    (dict(mask=torch.ones(3), nt=0), "nt"),
])
def test_bad_trace_interpolation_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TraceInterpolation(**kwargs)


def test_trace_interpolation_config_lists_missing_receivers():
    op = TraceInterpolation(gap_trace_mask(6, 2, start=1), nt=3)
    cfg = json.loads(json.dumps(op.config()))
    assert cfg["missing_receivers"] == [[1, 2]] and abs(cfg["fraction_missing"] - 1 / 3) < 1e-12
