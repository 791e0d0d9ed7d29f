"""Sub-benchmark 5: seismic trace interpolation (50% random traces missing, and a 20-trace gap).

Truths are noise-free shot gathers of the FWI problem (``inverse simulate --problem seismic-interp``:
5 shots x 1000 samples x 70 receivers, velocity families by seed); the measurement keeps the
recorded traces with Gaussian noise sigma = 1% of their RMS. Methods, scored by the
signal-to-noise ratio ``SNR = 10 log10(||x||^2 / ||x_hat - x||^2)`` in dB over all traces and over the
missing traces only:

- ``zero-filled``: missing traces left at zero (0 dB on the missing traces by construction);
- ``linear``: per shot and time sample, linear interpolation across receiver positions from the
  recorded neighbours (constant beyond the outermost recorded receiver), a classical baseline;
- ``dps-wave``: no diffusion prior on shot gathers ships with this project, so DPS inverts through
  the wave equation: the unknown is the velocity model with the ``seismic-velocity-70`` prior, the
  forward model ``TraceInterpolation o AcousticFWI``, and the interpolated gathers are the posterior
  mean of ``AcousticFWI(v)`` (velocities clamped to 1500-4500 m/s, as in ``fwi.py``). Without the prior the
  row reads "prior not available" (quick runs use a stationary Gaussian stand-in).

References: SeisFusion (Zhang et al. 2024) for the 50%-missing setting; Chung et al. (ICLR 2023) for DPS.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import (
    BenchSettings,
    fmt,
    mean_or_nan,
    mean_sd,
    write_block,
)
from report import machine_line

from forward_models import Gaussian, InverseProblem
from forward_models.base import ForwardModel
from forward_models.trace_interpolation import (
    TraceInterpolation,
    gap_trace_mask,
    random_trace_mask,
)
from inverse.problems import draw_truth, problem_options
from samplers import DPS, SamplerError

__all__ = ["BLOCK", "HEADING", "linear_trace_interpolation", "plan", "run", "snr_db", "table"]

BLOCK = "suite-trace-interp"
HEADING = "Suite: seismic trace interpolation (SNR, dB)"


def plan(settings: BenchSettings) -> dict:
    """Gather geometry, masks, instances and DPS settings."""
    if settings.quick:
        return {"options": {"size": 24, "nt": 200, "shots": 2, "receivers": 12}, "gap": 3,
                "instances": settings.n_seeds(4), "steps": 3, "samples": 2, "prior": "stand-in"}
    return {"options": {}, "gap": 20, "instances": settings.n_seeds(4), "steps": 100, "samples": 2,
            "prior": "seismic-velocity-70"}


def snr_db(x_hat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """``10 log10(||x||^2 / ||x_hat - x||^2)`` over the traces where ``mask`` (receivers, per shot) is 1."""
    x, x_hat = x.double(), x_hat.double()
    if mask is not None:
        w = mask.to(torch.float64)[:, None, :].expand_as(x)
        x, x_hat = x * w, x_hat * w
    return float(10 * torch.log10(x.square().sum() / (x_hat - x).square().sum().clamp_min(1e-300)))


def linear_trace_interpolation(y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill missing traces of ``y`` ``(shots, nt, receivers)`` by linear interpolation across receivers.

    ``mask`` is ``(shots, receivers)`` (1 = recorded); beyond the outermost recorded receiver the
    nearest recorded trace is repeated (``numpy.interp``).
    """
    out = y.detach().cpu().numpy().astype(np.float64).copy()
    m = mask.detach().cpu().numpy() > 0.5
    r = np.arange(out.shape[-1])
    for s in range(out.shape[0]):
        known = r[m[s]]
        if len(known) == 0 or len(known) == len(r):
            continue
        for t in range(out.shape[1]):
            out[s, t, ~m[s]] = np.interp(r[~m[s]], known, out[s, t, known])
    return torch.from_numpy(out).to(y.dtype)


class _WaveThenMask(ForwardModel):
    """``TraceInterpolation o AcousticFWI``: velocity -> recorded traces (differentiable, non-linear)."""

    linear = False
    differentiable = True

    def __init__(self, wave, mask_op):
        super().__init__()
        self.wave, self.mask_op = wave, mask_op
        self.input_shape, self.output_shape = tuple(wave.input_shape), tuple(mask_op.output_shape)

    def forward(self, x):
        """Masked shot gathers of velocity models ``x``."""
        return self.mask_op(self.wave(x))


def _fwi_prior(p: dict):
    """The velocity prior of :func:`fwi.benchmark_prior` (or None with a note)."""
    from fwi import benchmark_prior

    return benchmark_prior({"prior": p["prior"], "options": p["options"]})


def _dps_wave(truth, y, mask_op, noise, opts, prior, p, seed) -> torch.Tensor:
    from forward_models.seismic import AcousticFWI

    wave = AcousticFWI((opts["size"], opts["size"]), nt=opts["nt"], num_shots=opts["shots"],
                       num_receivers=opts["receivers"], freq=opts["freq"]).to(prior.dtype)
    from fwi import ClampedVelocity

    op = _WaveThenMask(ClampedVelocity(wave), mask_op.to(prior.dtype))
    problem = InverseProblem(op, y.to(prior.dtype), noise)
    post = DPS(num_steps=p["steps"], zeta=1.0).sample(problem, prior, p["samples"], seed=seed)
    with torch.no_grad():
        gathers = wave(post.samples.to(prior.dtype).clamp(1500.0, 4500.0))
    return gathers.mean(0)


def run(settings: BenchSettings) -> list[dict]:
    """Run every missing (mask, instance, method)."""
    p = plan(settings)
    opts = problem_options("seismic-interp", **p["options"])
    store = settings.store("trace_interp")
    prior, prior_note = _fwi_prior(p)
    masks = {"random-50%": random_trace_mask(opts["receivers"], 0.5, seed=opts["mask_seed"]),
             f"gap-{p['gap']}": gap_trace_mask(opts["receivers"], p["gap"])}
    out = []
    for seed in range(p["instances"]):
        truth = None
        for mask_name, mask in masks.items():
            mask_op = TraceInterpolation(mask, nt=opts["nt"], num_shots=opts["shots"])
            for method in ("zero-filled", "linear", "dps-wave"):
                key = {"mask": mask_name, "method": method, "seed": seed, "options": p["options"],
                       "prior": p["prior"], "steps": p["steps"]}
                if store.done(key):
                    out += store.records(**key)
                    continue
                if truth is None:
                    truth = draw_truth("seismic-interp", opts, seed)[0].float()
                y_clean = mask_op(truth[None])[0]
                sigma = 0.01 * float(y_clean[mask_op.mask[:, None, :].expand_as(y_clean) > 0].square().mean().sqrt())
                g = torch.Generator().manual_seed(seed)
                y = y_clean + sigma * mask_op(torch.randn(truth.shape, generator=g)[None])[0]
                t0 = time.perf_counter()
                try:
                    if method == "zero-filled":
                        x_hat, note = y, ""
                    elif method == "linear":
                        x_hat, note = linear_trace_interpolation(y, mask_op.mask), ""
                    elif prior is None:
                        x_hat, note = None, prior_note
                    else:
                        x_hat, note = _dps_wave(truth, y, mask_op, Gaussian(sigma), opts, prior, p, seed), prior_note
                except (SamplerError, ValueError, RuntimeError) as e:
                    x_hat, note = None, f"failed: {type(e).__name__}: {str(e).splitlines()[0]}"
                wall = time.perf_counter() - t0
                missing = 1.0 - mask_op.mask
                rec = {"note": note, "time_s": wall, "threads": settings.threads, "noise_sigma": sigma}
                if x_hat is not None:
                    rec.update(snr_all=snr_db(x_hat, truth), snr_missing=snr_db(x_hat, truth, missing))
                out.append(store.add(key, rec))
                settings.log(f"trace-interp {mask_name} {method} seed={seed}: "
                             + (f"SNR {rec['snr_all']:.2f} dB (missing {rec['snr_missing']:.2f})"
                                if x_hat is not None else note))
    return out


def table(records: list[dict], settings: BenchSettings) -> str:
    """Markdown table, one row per (mask, method); replaces the ``suite-trace-interp`` block."""
    p = plan(settings)
    o = problem_options("seismic-interp", **p["options"])
    lines = [machine_line(settings.threads, seeds=f"instances 0-{p['instances'] - 1} (velocity family = seed mod 4)",
                          note=f"gathers {o['shots']} shots x {o['nt']} samples x {o['receivers']} receivers; noise "
                               f"1% of "
                          f"the recorded traces' RMS; DPS {p['steps']} steps, {p['samples']} samples."),
             "", "| mask | method | instances | SNR all traces (dB, mean ± sd) | SNR missing traces (dB) | time (s) | "
                 "note |",
             "|---|---|---|---|---|---|---|"]
    keys = []
    for r in records:
        k = (r["key"]["mask"], r["key"]["method"])
        if k not in keys:
            keys.append(k)
    for k in keys:
        rs = [r for r in records if (r["key"]["mask"], r["key"]["method"]) == k]
        ok = [r for r in rs if "snr_all" in r]
        note = next((r["note"] for r in rs if r.get("note")), "")
        if not ok:
            lines.append(f"| {k[0]} | {k[1]} | 0 | - | - | - | {note} |")
            continue
        lines.append(f"| {k[0]} | {k[1]} | {len(ok)} | {mean_sd((r['snr_all'] for r in ok), 2)} | "
                     f"{fmt(mean_or_nan(r['snr_missing'] for r in ok), 2)} | "
                     f"{fmt(mean_or_nan(r['time_s'] for r in ok), 2)} "
                     f"| {note} |")
    return write_block(settings, BLOCK, HEADING, "\n".join(lines))
