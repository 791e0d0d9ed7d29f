"""Quality checks of a trained prior against held-out ground truths (all in model space).

- Pixel-value histogram distance: the 1-D Wasserstein-1 distance between the pooled pixel values
  of unconditional samples and of held-out truths (equal counts; sorted differences).
- Radial power-spectrum error: mean absolute difference of ``log10`` radially averaged power spectra
  (``|FFT|^2`` averaged over rings of integer radius), samples vs truths, over the radii where the
  truths hold power (above ``1e-8`` of the peak: :func:`spectrum_radii`; a dealiased solver's data
  have none beyond its cut-off).
- Denoising PSNR: ``PSNR(D(x + sigma eps, sigma), x)`` at several ``sigma`` against a classical
  baseline, the best Gaussian-blur denoiser (blur width chosen per sigma on the same truths), with
  the data range taken as the truths' max - min.

:data:`QUALITY_FLOORS` are the floors every shipped prior's card meets (checked by
``tests/priors/test_shipped_priors.py``); :func:`quality_failures` lists the ones a report misses.
"""

from __future__ import annotations

import math

import torch

from priors.base import Prior
from priors.ode import latent_to_sample

__all__ = ["QUALITY_FLOORS", "quality_failures", "SPECTRUM_REL_FLOOR", "pixel_histogram_distance",
           "radial_power_spectrum", "spectrum_radii", "spectrum_error", "denoising_psnr", "unconditional_samples",
           "quality_report"]


def pixel_histogram_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Wasserstein-1 distance between the pooled pixel values of ``a`` and ``b`` (same number of pixels)."""
    va, _ = torch.sort(a.reshape(-1).double())
    vb, _ = torch.sort(b.reshape(-1).double())
    if len(va) != len(vb):
        n = min(len(va), len(vb))
        idx = lambda v: v[torch.linspace(0, len(v) - 1, n).round().long()]  # noqa: E731
        va, vb = idx(va), idx(vb)
    return float((va - vb).abs().mean())


def radial_power_spectrum(x: torch.Tensor) -> torch.Tensor:
    """Radially averaged power spectrum of images ``(N, C, H, W)``, averaged over N and C -> (R,)."""
    x = x.double()
    p = (torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True), norm="ortho").abs() ** 2).mean(dim=(0, 1))
    H, W = p.shape
    ky = torch.fft.fftfreq(H, 1.0 / H).reshape(-1, 1)
    kx = torch.fft.fftfreq(W, 1.0 / W).reshape(1, -1)
    r = torch.sqrt(ky**2 + kx**2).round().long()
    rmax = min(H, W) // 2
    out = torch.zeros(rmax + 1, dtype=torch.float64)
    cnt = torch.zeros(rmax + 1, dtype=torch.float64)
    mask = r <= rmax
    out.index_add_(0, r[mask], p[mask])
    cnt.index_add_(0, r[mask], torch.ones_like(p[mask]))
    return out / cnt.clamp_min(1)


#: radii whose reference power is below this fraction of its peak hold no signal (round-off) and are not compared
SPECTRUM_REL_FLOOR = 1e-8


def spectrum_radii(b: torch.Tensor, rel_floor: float = SPECTRUM_REL_FLOOR) -> torch.Tensor:
    """The radii ``k >= 1`` where the reference ``b`` holds power above ``rel_floor`` times its peak.

    Data from a dealiased spectral solver (the Navier-Stokes snapshots: 2/3 rule) have exactly zero
    power beyond the cut-off, ~1e-16 after round-off; a log-spectrum error there compares round-off
    with round-off (or with any tiny power at all: ~12 decades per radius) and says nothing about
    the prior, so those radii are left out.
    """
    pb = radial_power_spectrum(b)
    k = torch.arange(len(pb))
    return k[(k >= 1) & (pb > rel_floor * pb[1:].max())]


def spectrum_error(a: torch.Tensor, b: torch.Tensor, rel_floor: float = SPECTRUM_REL_FLOOR) -> float:
    """Mean |log10 P_a(k) - log10 P_b(k)| over the radii ``k >= 1`` where ``b`` holds power
    (:func:`spectrum_radii`: above ``rel_floor`` times its peak)."""
    pa, pb = radial_power_spectrum(a), radial_power_spectrum(b)
    k = spectrum_radii(b, rel_floor)
    return float((torch.log10(pa[k] + 1e-30) - torch.log10(pb[k] + 1e-30)).abs().mean())


def _psnr(x, ref, data_range):
    mse = float(((x.double() - ref.double()) ** 2).mean())
    return 10 * math.log10(data_range**2 / max(mse, 1e-30))


def _blur(x, width):
    if width <= 0:
        return x
    r = max(1, int(math.ceil(3 * width)))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / width) ** 2)
    k = k / k.sum()
    C = x.shape[1]
    xp = torch.nn.functional.pad(x, (r, r, r, r), mode="reflect")
    xp = torch.nn.functional.conv2d(xp, k.reshape(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return torch.nn.functional.conv2d(xp, k.reshape(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def denoising_psnr(prior: Prior, truths: torch.Tensor, sigmas=(0.1, 0.2, 0.5), seed: int = 0) -> list[dict]:
    """PSNR of the prior's denoiser and of the best Gaussian blur at each sigma (module docstring)."""
    g = torch.Generator().manual_seed(seed)
    rng = float(truths.max() - truths.min())
    rows = []
    for s in sigmas:
        noisy = truths + s * torch.randn(truths.shape, generator=g, dtype=truths.dtype)
        with torch.no_grad():
            den = prior.denoise(noisy, torch.full((len(truths),), float(s), dtype=truths.dtype))
        blur = max(_psnr(_blur(noisy, w), truths, rng) for w in (0.0, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0))
        rows.append({"sigma": float(s), "psnr_prior": _psnr(den, truths, rng), "psnr_best_blur": blur,
                     "psnr_noisy": _psnr(noisy, truths, rng)})
    return rows


def unconditional_samples(prior: Prior, n: int, num_steps: int = 32, seed: int = 0, batch: int = 16) -> torch.Tensor:
    """``n`` samples by the probability-flow ODE (Heun, EDM schedule), model space."""
    g = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for i in range(0, n, batch):
            z = torch.randn(min(batch, n - i), *prior.shape, generator=g, dtype=prior.dtype)
            out.append(latent_to_sample(prior, z, num_steps)[0])
    return torch.cat(out)


def quality_report(prior: Prior, truths: torch.Tensor, num_samples: int = 64, num_steps: int = 32,
                   seed: int = 0) -> dict:
    """All checks in one JSON-ready dict (for the model card)."""
    samples = unconditional_samples(prior, num_samples, num_steps, seed)
    ref = truths[:num_samples]
    return {"num_samples": num_samples, "ode_steps": num_steps,
            "pixel_w1_samples_vs_truths": pixel_histogram_distance(samples, ref),
            "pixel_w1_truths_vs_truths": pixel_histogram_distance(truths[num_samples:2 * num_samples], ref)
            if len(truths) >= 2 * num_samples else None,
            "spectrum_log10_error": spectrum_error(samples, ref),
            "spectrum_radii_compared": [int(k) for k in spectrum_radii(ref)],
            "spectrum_log10_error_truths": spectrum_error(truths[num_samples:2 * num_samples], ref)
            if len(truths) >= 2 * num_samples else None,
            "denoising": denoising_psnr(prior, ref, seed=seed)}


#: the floors a prior's quality report must meet: spectrum error below ``spectrum_log10_error_max``, the samples'
#: pixel W1 below ``pixel_w1_ratio_max`` times the held-out truths' own, and the denoiser above the best blur
QUALITY_FLOORS = {"spectrum_log10_error_max": 0.15, "pixel_w1_ratio_max": 3.0}


def quality_failures(report: dict, floors: dict | None = None) -> list[str]:
    """The floors of :data:`QUALITY_FLOORS` (or ``floors``) that ``report`` (:func:`quality_report`) misses,
    one short sentence each; an empty list when it passes them all."""
    f = {**QUALITY_FLOORS, **(floors or {})}
    out = []
    if not report["spectrum_log10_error"] < f["spectrum_log10_error_max"]:
        out.append(f"spectrum log10 error {report['spectrum_log10_error']:.3f} >= {f['spectrum_log10_error_max']}")
    ref = report.get("pixel_w1_truths_vs_truths")
    if ref is not None and not report["pixel_w1_samples_vs_truths"] < f["pixel_w1_ratio_max"] * ref:
        out.append(f"pixel W1 {report['pixel_w1_samples_vs_truths']:.4f} >= {f['pixel_w1_ratio_max']} x the "
                   f"held-out truths' own {ref:.4f}")
    for r in report["denoising"]:
        if not r["psnr_prior"] > r["psnr_best_blur"]:
            out.append(f"denoising at sigma {r['sigma']}: {r['psnr_prior']:.2f} dB <= best blur "
                       f"{r['psnr_best_blur']:.2f} dB")
    return out
