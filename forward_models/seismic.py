"""Acoustic full-waveform modelling (FWI forward problem) with deepwave, in OpenFWI's conventions.

The constant-density acoustic (scalar) wave equation for the pressure ``u(t, z, x)`` (deepwave's
sign convention),

    d^2u/dz^2 + d^2u/dx^2 - (1 / v(z, x)^2) d^2u/dt^2 = s(t) delta(z - z_s) delta(x - x_s),

is integrated by deepwave's ``scalar`` propagator (Richardson, deepwave, Zenodo 2023): leapfrog
(2nd order) in time, ``accuracy``-order finite differences in space, a convolutional PML
(Pasalic & McGarry, SEG 2010) of ``pml_width`` cells on every side. The data are the pressure
recorded at the receivers, one shot gather per source. Gradients with respect to ``v`` come
from deepwave's adjoint-state backward pass (Plessix, GJI 2006).

OpenFWI (Deng et al., NeurIPS Datasets and Benchmarks 2022) conventions: a 70 x 70 velocity model
with 10 m cells, 1500-4500 m/s; 5 sources evenly spread along the surface and 70 receivers (one
per column), all at 10 m depth; a 15 Hz Ricker wavelet; 1000 samples of 1 ms.

The internal time step comes from the CFL condition ``dt_int * max_vel * sqrt(2) / dx <= C`` for
``max_vel`` (default 4500 m/s), not for the sample, so the cost of a call and the absorbing
boundary never depend on the velocities. OpenFWI's ``dt = 1 ms`` has ``C = 0.636`` at 4500 m/s:
below the 4th-order scheme's stability limit 0.866 but above deepwave's conservative default
target 0.6, which would split every sample into two internal steps. The default target here is
``courant_number = 0.7``: one internal step per sample, half the cost, and deepwave's backward
pass is then the exact adjoint of the discrete forward map (with two internal steps its compiled
backward samples the gradient's time integral every other step: ~1e-5 relative error). The data
differ from the ``C = 0.6`` setting by ~0.3 % (relative L2, a 70 x 70 fault model).
"""

from __future__ import annotations

import math

import torch

from forward_models.base import ForwardModel
from forward_models.errors import ForwardModelError

# deepwave is imported where it is used: importing it costs seconds (torch._dynamo), and the
# forward-model registry imports this module whether or not FWI is used.

__all__ = ["AcousticFWI", "ClampedVelocity", "REGISTRY_ENTRIES"]


def _spread(count: int, width: int) -> torch.Tensor:
    """``count`` column indices evenly spread from the first to the last column (the centre for one)."""
    if count == 1:
        return torch.tensor([(width - 1) // 2])
    return torch.linspace(0, width - 1, count, dtype=torch.float64).round().long()


class AcousticFWI(ForwardModel):
    """Acoustic wave-equation modelling ``v (m/s) -> shot gathers``, differentiable in ``v`` (deepwave).

    Input: velocity models ``(B, 1, H, W)`` in m/s, ``H`` the depth axis, cell size ``dx`` metres,
    every value in ``(0, max_vel]``. Output: pressure recorded at the receivers, shaped as OpenFWI's
    data, ``(B, num_shots, nt, num_receivers)`` = [model, shot, time, receiver] (deepwave's own
    order is [shot, receiver, time]; the time and receiver axes are swapped so the shot gathers
    feed :class:`forward_models.trace_interpolation.TraceInterpolation` directly). Amplitudes are
    deepwave's for a source term ``s(t)`` = Ricker wavelet of unit peak (arbitrary units).

    Geometry: ``num_shots`` sources and ``num_receivers`` receivers at depths ``source_depth`` and
    ``receiver_depth`` metres (rounded to the nearest cell), their columns evenly spread from the
    first to the last column (``round(linspace(0, W - 1, n))``; one source sits in the middle).
    The wavelet is deepwave's Ricker ``(1 - 2 pi^2 f^2 t^2) exp(-pi^2 f^2 t^2)`` of peak frequency
    ``freq`` Hz centred at ``peak_time`` seconds (default ``1.5 / freq``, so it starts from zero).

    Cost: the time step ``dt`` is split into ``step_ratio`` internal steps fixed by the CFL
    condition for ``max_vel`` (not the sample's maximum); ``last_run_info`` holds deepwave's
    ``RunInfo`` of the latest call (``step_ratio``, ``internal_dt``). A batch of ``B`` models runs as
    one deepwave call of ``B * num_shots`` shots with a per-shot velocity model. Memory for a
    gradient is the stored wavefield history, about ``B * num_shots * nt * step_ratio *
    (H + 2 pml) (W + 2 pml)`` values (260 MB in float32 at OpenFWI's size, per model).

    Dtype: the computation runs in the input's dtype (deepwave supports float32 and float64).
    With ``step_ratio == 1`` (the default setting) the gradient is the exact discrete adjoint
    (finite differences agree to ~1e-9 in float64); with ``step_ratio > 1`` (e.g.
    ``courant_number=0.6``, deepwave's default) deepwave's compiled backward pass samples the
    gradient's time integral every ``step_ratio`` internal steps: ~1e-5 relative error.

    Example (a small, fast instance)::

        import torch
        from forward_models.seismic import AcousticFWI
        op = AcousticFWI((20, 20), nt=150, num_shots=2, num_receivers=10)
        v = op.example_input(2, seed=0)        # (2, 1, 20, 20) layered models in m/s
        d = op(v)                              # (2, 2, 150, 10): [model, shot, time, receiver]
    """

    linear = False
    differentiable = True

    def __init__(self, shape=(70, 70), *, dx: float = 10.0, dt: float = 1e-3, nt: int = 1000,
                 num_shots: int = 5, num_receivers: int = 70, source_depth: float = 10.0,
                 receiver_depth: float = 10.0, freq: float = 15.0, peak_time: float | None = None,
                 max_vel: float = 4500.0, pml_width: int = 20, accuracy: int = 4,
                 courant_number: float | None = 0.7, device=None):
        super().__init__()
        if len(shape) != 2 or any(int(s) != s or s < 2 for s in shape):
            raise ForwardModelError(f"AcousticFWI: shape must be two integers >= 2 (depth, width), got {tuple(shape)}")
        H, W = int(shape[0]), int(shape[1])
        for name, val in (("dx", dx), ("dt", dt), ("freq", freq), ("max_vel", max_vel)):
            if not (isinstance(val, (int, float)) and math.isfinite(val) and val > 0):
                raise ForwardModelError(f"AcousticFWI: {name} must be a positive finite number, got {val!r}")
        for name, val in (("nt", nt), ("num_shots", num_shots), ("num_receivers", num_receivers)):
            if not (isinstance(val, int) and not isinstance(val, bool) and val >= 1):
                raise ForwardModelError(f"AcousticFWI: {name} must be a positive integer, got {val!r}")
        if num_shots > W or num_receivers > W:
            raise ForwardModelError("AcousticFWI: at most one source and one receiver per column: "
                                    f"num_shots={num_shots} "
                                    f"and num_receivers={num_receivers} must be <= the model width {W}")
        depths = {}
        for name, depth in (("source_depth", source_depth), ("receiver_depth", receiver_depth)):
            cell = round(float(depth) / dx)
            if not 0 <= cell < H:
                raise ForwardModelError(f"AcousticFWI: {name}={depth} m is outside the model (depth {H * dx:g} m)")
            depths[name] = cell
        if accuracy not in (2, 4, 6, 8):
            raise ForwardModelError(f"AcousticFWI: accuracy must be 2, 4, 6 or 8, got {accuracy!r}")
        if not (isinstance(pml_width, int) and pml_width >= 0):
            raise ForwardModelError(f"AcousticFWI: pml_width must be a non-negative integer, got {pml_width!r}")
        self.shape, self.dx, self.dt, self.nt = (H, W), float(dx), float(dt), int(nt)
        self.num_shots, self.num_receivers = int(num_shots), int(num_receivers)
        self.source_depth, self.receiver_depth = float(source_depth), float(receiver_depth)
        self.freq, self.max_vel = float(freq), float(max_vel)
        self.peak_time = 1.5 / self.freq if peak_time is None else float(peak_time)
        self.pml_width, self.accuracy = int(pml_width), int(accuracy)
        self.courant_number = None if courant_number is None else float(courant_number)
        from deepwave.discretisation import cfl_condition_n, critical_courant_number

        if self.courant_number is not None:
            c_crit = critical_courant_number(self.accuracy, propagator="scalar")
            if not 0 < self.courant_number <= c_crit:
                raise ForwardModelError(f"AcousticFWI: courant_number must lie in (0, {c_crit:.3f}] (the stability "
                                        f"limit at accuracy {self.accuracy}), got {courant_number}")
        # internal steps per sample, fixed by max_vel rather than by the sample
        self.step_ratio = cfl_condition_n([self.dx, self.dx], self.dt, self.max_vel,
                                          courant_number=self.courant_number)[1]
        src = torch.zeros(num_shots, 1, 2, dtype=torch.long)
        src[:, 0, 0] = depths["source_depth"]
        src[:, 0, 1] = _spread(num_shots, W)
        rec = torch.zeros(num_shots, num_receivers, 2, dtype=torch.long)
        rec[:, :, 0] = depths["receiver_depth"]
        rec[:, :, 1] = _spread(num_receivers, W)
        self.register_buffer("source_locations", src)
        self.register_buffer("receiver_locations", rec)
        self.input_shape = (1, H, W)
        self.output_shape = (self.num_shots, self.nt, self.num_receivers)
        self.last_run_info = None
        if device is not None:
            self.to(device)

    def wavelet(self, dtype=torch.float64) -> torch.Tensor:
        """The source time function ``(nt,)``: Ricker of peak frequency ``freq`` centred at ``peak_time``."""
        from deepwave.wavelets import ricker

        return ricker(self.freq, self.nt, self.dt, peak_time=self.peak_time, dtype=dtype)

    def _check_velocities(self, v: torch.Tensor) -> None:
        lo, hi = float(v.min()), float(v.max())
        if lo <= 0 or hi > self.max_vel:
            raise ForwardModelError(f"AcousticFWI: velocities must lie in (0, max_vel={self.max_vel:g}] m/s, got "
                                    f"values in [{lo:g}, {hi:g}] (pass velocities in m/s, or raise max_vel)")

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Shot gathers ``(B, num_shots, nt, num_receivers)`` of velocity models ``(B, 1, H, W)`` in m/s."""
        if not v.is_floating_point():
            raise ForwardModelError(f"AcousticFWI: velocities must be a floating-point tensor, got {v.dtype}")
        if v.shape[0] == 0:
            return v.new_zeros(0, *self.output_shape)
        self._check_velocities(v.detach())
        import deepwave

        B, S = v.shape[0], self.num_shots
        models = v[:, 0].repeat_interleave(S, dim=0)  # (B * S, H, W): one model per shot
        amp = self.wavelet(v.dtype).to(v.device).reshape(1, 1, -1).expand(B * S, 1, self.nt)
        out = deepwave.scalar(
            models, self.dx, self.dt,
            source_amplitudes=amp,
            source_locations=self.source_locations.repeat(B, 1, 1),
            receiver_locations=self.receiver_locations.repeat(B, 1, 1),
            max_vel=self.max_vel, pml_freq=self.freq, pml_width=self.pml_width,
            accuracy=self.accuracy, courant_number=self.courant_number,
        )
        self.last_run_info = out.info
        data = out.receiver_amplitudes.reshape(B, S, self.num_receivers, self.nt)
        return data.transpose(2, 3)

    def example_input(self, n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
        """``n`` seeded layered (OpenFWI FlatVel-like) models in m/s within ``[1500, 4500)``, capped by ``max_vel``."""
        from forward_models.generators.velocity import velocity_models

        hi = min(4500.0, self.max_vel)
        lo = min(1500.0, 0.5 * hi)
        return velocity_models(int(n), "flat", size=self.shape, seed=seed, v_range=(lo, hi), dtype=dtype)

    def config(self) -> dict:
        """Constructor arguments (JSON), plus the shapes and flags."""
        return {**super().config(), "shape": list(self.shape), "dx": self.dx, "dt": self.dt, "nt": self.nt,
                "num_shots": self.num_shots, "num_receivers": self.num_receivers,
                "source_depth": self.source_depth, "receiver_depth": self.receiver_depth, "freq": self.freq,
                "peak_time": self.peak_time, "max_vel": self.max_vel, "pml_width": self.pml_width,
                "accuracy": self.accuracy, "courant_number": self.courant_number,
                "step_ratio": self.step_ratio, "output_layout": "shot, time, receiver"}


def _example_fwi(seed: int) -> AcousticFWI:
    """A small fast instance: 20 x 20 cells, 2 shots, 10 receivers, 150 samples, 20 Hz (seed unused)."""
    return AcousticFWI((20, 20), nt=150, num_shots=2, num_receivers=10, freq=20.0)


def _benchmark_fwi() -> AcousticFWI:
    """OpenFWI's size: 70 x 70, 5 shots, 70 receivers, 1000 samples of 1 ms."""
    return AcousticFWI()


class ClampedVelocity(ForwardModel):
    """``F(clamp(v, v_min, v_max))``: the wave solver sees only velocities in its physical range.

    Diffusion samples early in a run (or from a poor prior) leave 1500-4500 m/s, where the solver's
    stability limit breaks (InverseBench reports DAPS unstable on FWI for this reason); the samplers
    therefore see the same bounds L-BFGS enforces by clamping. The gradient is zero outside the range.
    """

    linear = False
    differentiable = True

    def __init__(self, wave, v_min: float = 1500.0, v_max: float = 4500.0):
        super().__init__()
        self.wave, self.v_min, self.v_max = wave, float(v_min), float(v_max)
        self.input_shape, self.output_shape = tuple(wave.input_shape), tuple(wave.output_shape)

    def forward(self, x):
        """Shot gathers of the clamped velocity models."""
        return self.wave(x.clamp(self.v_min, self.v_max))

    def config(self) -> dict:
        """The wave model's configuration with the clamping range."""
        return {**self.wave.config(), "clamp": [self.v_min, self.v_max]}



REGISTRY_ENTRIES = {"fwi": {"cls": AcousticFWI, "example": _example_fwi, "benchmark": _benchmark_fwi}}
