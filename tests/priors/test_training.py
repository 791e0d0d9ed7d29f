"""Training priors with Lightning: export, resume, flow matching, and the learned denoiser against the
exact one on Gaussian data (where E[x0 | x_sigma] is known)."""

import warnings

import pytest
import torch

from priors import EDMPrior, FlowMatchingPrior, GaussianPrior, load_prior
from priors.training import train_prior

warnings.filterwarnings("ignore")


def _gaussian_data(n=512, size=8, seed=0):
    """Smooth Gaussian images: white noise blurred by a fixed 3x3 kernel (known covariance)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, 1, size + 2, size + 2, generator=g)
    k = torch.ones(1, 1, 3, 3) / 3.0
    return torch.nn.functional.conv2d(w, k) * 0.5


def test_edm_training_exports_a_loadable_prior_and_resumes(tmp_path):
    data = _gaussian_data(64)
    out = tmp_path / "p"
    train_prior(data, out, steps=6, batch_size=8, widths=(8, 16), checkpoint_every=3)
    prior = load_prior(out)
    assert isinstance(prior, EDMPrior) and prior.shape == (1, 8, 8)
    assert prior.card["training"]["steps"] == 6
    train_prior(data, out, steps=10, batch_size=8, widths=(8, 16), checkpoint_every=3, resume=True, overwrite=True)
    again = load_prior(out)
    assert again.card["training"]["steps"] == 10 and again.card["training"]["resumed"] is True
    with pytest.raises(FileExistsError):
        train_prior(data, out, steps=1, widths=(8, 16))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_prior(data, tmp_path / "fresh", steps=1, widths=(8, 16), resume=True)


def test_flow_training_exports_a_flow_prior(tmp_path):
    train_prior(_gaussian_data(32), tmp_path / "f", kind="flow", steps=3, batch_size=8, widths=(8, 16))
    prior = load_prior(tmp_path / "f")
    assert isinstance(prior, FlowMatchingPrior)
    assert prior.denoise(torch.randn(2, 1, 8, 8), torch.tensor([1.0, 2.0])).shape == (2, 1, 8, 8)


def test_bad_training_data():
    with pytest.raises(ValueError, match="shape"):
        train_prior(torch.zeros(4, 8, 8), "/tmp/never", steps=1)
    with pytest.raises(ValueError, match="NaN"):
        train_prior(torch.full((4, 1, 8, 8), float("nan")), "/tmp/never-nan", steps=1)


@pytest.mark.slow
def test_learned_denoiser_approaches_the_exact_gaussian_denoiser(tmp_path):
    """600 steps on blurred-noise images: at sigma = 0.3 the learned denoiser's error to the exact
    posterior mean is well below the noise it removes (measured: see the assertion's margin)."""
    torch.manual_seed(0)
    data = _gaussian_data(2048)
    flat = data.reshape(len(data), -1).double()
    exact = GaussianPrior(torch.zeros(64, dtype=torch.float64), torch.cov(flat.T) + 1e-6 * torch.eye(64))
    train_prior(data, tmp_path / "g", steps=600, batch_size=32, widths=(16, 32), checkpoint_every=600, lr=1e-3)
    prior = load_prior(tmp_path / "g")
    x0 = _gaussian_data(256, seed=1)
    for s in (0.3, 1.0):
        xs = x0 + s * torch.randn_like(x0)
        sig = torch.full((256,), s)
        with torch.no_grad():
            learned = prior.denoise(xs, sig).reshape(256, -1).double()
        want = exact.denoise(xs.reshape(256, -1).double(), sig.double())
        err = float(((learned - want) ** 2).mean())
        exact_mse = float(((want - x0.reshape(256, -1).double()) ** 2).mean())
        assert err < 0.25 * exact_mse, (s, err, exact_mse)


def test_dataset_cache_is_reused_and_checked(tmp_path, monkeypatch):
    """A resumed chunk reads the generated data back instead of regenerating it (NS: ~1 h under load)."""
    import inverse.datasets as ds

    cache = tmp_path / "w" / "dataset.safetensors"
    a = ds.cached_dataset("phantoms", 6, 16, 3, cache)
    assert cache.is_file()

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although the cache matches")

    monkeypatch.setattr(ds, "make_dataset", fail)
    b = ds.cached_dataset("phantoms", 6, 16, 3, cache)
    assert torch.equal(a[0], b[0]) and a[3] == b[3] and b[1].scale == a[1].scale
    with pytest.raises(ValueError, match="holds .*num_examples.: 6.*delete it"):
        ds.cached_dataset("phantoms", 7, 16, 3, cache)


@pytest.mark.parametrize("kind", ["edm", "flow"])
def test_sizes_the_unet_levels_do_not_divide_train_a_padded_network(tmp_path, kind):
    """10 x 10 data with 3 levels: the UNet runs at 12 x 12 (edge-padded, cropped back), the prior is 10 x 10."""
    from priors.network import network_call

    data = torch.randn(32, 1, 10, 10, generator=torch.Generator().manual_seed(0)) * 0.5
    out = tmp_path / "p"
    train_prior(data, out, kind=kind, steps=3, batch_size=8, widths=(8, 16, 16))
    prior = load_prior(out)
    assert prior.shape == (1, 10, 10) and prior.network.config.sample_size == 12
    assert prior.card["training"]["network_size"] == 12
    x = torch.randn(2, 1, 10, 10)
    assert prior.denoise(x, torch.tensor([0.5, 2.0])).shape == (2, 1, 10, 10)
    # the padded call equals running the network on the replicate-padded input and cropping
    t = torch.tensor([1.0, 1.0])
    full = prior.network(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), t).sample[..., 1:11, 1:11]
    assert torch.allclose(network_call(prior.network, x, t), full)
    with pytest.raises(ValueError, match="larger than the network"):
        network_call(prior.network, torch.randn(1, 1, 14, 14), t)


def test_card_shape_must_be_the_padded_networks(tmp_path):
    """A card may name a field smaller than its network only by less than one UNet divisibility unit."""
    import json

    from priors.loading import PriorLoadError

    data = torch.randn(16, 1, 10, 10, generator=torch.Generator().manual_seed(0)) * 0.5
    out = tmp_path / "p"
    train_prior(data, out, steps=1, batch_size=8, widths=(8, 16, 16))   # network 12 x 12, unit 4
    card = json.loads((out / "prior.json").read_text())
    for shape, ok in (([1, 9, 9], True), ([1, 12, 12], True), ([1, 8, 8], False), ([1, 13, 13], False)):
        card["shape"] = shape
        (out / "prior.json").write_text(json.dumps(card))
        if ok:
            assert load_prior(out).shape == tuple(shape)
        else:
            with pytest.raises(PriorLoadError, match="does not match the network"):
                load_prior(out)


def test_max_minutes_stops_training_exports_and_is_per_run_on_resume(tmp_path):
    """A time-boxed run exports what it trained; a resumed chunk gets its own time, not the time left."""
    data, out = _gaussian_data(64), tmp_path / "t"
    train_prior(data, out, steps=10**6, batch_size=8, widths=(8, 16), checkpoint_every=10**6, max_minutes=0.02)
    first = load_prior(out).card["training"]
    assert 0 < first["steps"] < 10**6 and first["accelerator"] == "cpu"
    train_prior(data, out, steps=10**6, batch_size=8, widths=(8, 16), checkpoint_every=10**6, max_minutes=0.02,
                resume=True, overwrite=True)
    # Lightning's own Timer would restore the elapsed time from the checkpoint and stop after one step
    assert load_prior(out).card["training"]["steps"] >= first["steps"] + 5
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="max_minutes"):
            train_prior(data, tmp_path / "bad", steps=1, widths=(8, 16), max_minutes=bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_navier_stokes_data_on_the_gpu_match_the_cpu():
    from forward_models.generators.vorticity import navier_stokes_snapshots

    cpu = navier_stokes_snapshots(3, 32, seed=1, t_spinup=0.2, dtype=torch.float64)
    gpu = navier_stokes_snapshots(3, 32, seed=1, t_spinup=0.2, dtype=torch.float64, device="cuda", batch_size=2)
    assert gpu.device.type == "cpu"
    torch.testing.assert_close(gpu, cpu, rtol=1e-9, atol=1e-9)
