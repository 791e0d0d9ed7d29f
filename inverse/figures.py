"""Matplotlib figures, written atomically (Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from samplers.atomic import check_output_path, write_bytes_atomic  # noqa: E402

__all__ = ["save_figure", "plot_mixture_posterior_2d", "plot_image_posterior"]


def save_figure(fig, path, *, overwrite: bool = False, dpi: int = 120) -> Path:
    """Save ``fig`` atomically as PNG (rendered in memory, then a temporary file and a rename) and close it."""
    import io

    try:
        check_output_path(path, overwrite)
        buf = io.BytesIO()
        fig.savefig(buf, dpi=dpi, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return write_bytes_atomic(path, buf.getbuffer(), overwrite=overwrite)


def plot_mixture_posterior_2d(posterior, exact, *, truth=None, y=None, A=None, title: str = "",
                              extent: float = 22.0):
    """Two panels: sampler samples over the exact 2-D posterior density; exact vs sampled mode weights.

    ``exact`` is a :class:`priors.GaussianMixture` on R^2; ``A`` (1 x 2 or 2 x 2) and ``y`` draw the
    measurement line ``A x = y`` when given.
    """
    samples = posterior.resample().detach().cpu().to(torch.float64)
    fig, (ax, axb) = plt.subplots(1, 2, figsize=(11, 4.8), gridspec_kw={"width_ratios": [1.15, 1]})
    g = np.linspace(-extent, extent, 300)
    X, Y = np.meshgrid(g, g)
    pts = torch.from_numpy(np.stack([X.ravel(), Y.ravel()], 1))
    logp = exact.log_prob(pts).reshape(X.shape).numpy()
    dens = np.exp(logp - logp.max())
    cf = ax.contourf(X, Y, dens, levels=np.linspace(0.02, 1, 11), cmap="Blues", extend="neither")
    fig.colorbar(cf, ax=ax, label="exact posterior density (relative to max)")
    ax.scatter(samples[:, 0], samples[:, 1], s=3, c="tab:red", alpha=0.35, label=f"sampler ({len(samples)} samples)")
    if A is not None and y is not None and A.shape[0] == 1:
        a = A[0].cpu().numpy()
        if abs(a[1]) > 1e-12:
            ax.plot(g, (float(y[0]) - a[0] * g) / a[1], "k--", lw=0.8, label="measurement line A x = y")
    if truth is not None:
        ax.plot(*truth.cpu().numpy(), marker="*", ms=14, c="gold", mec="k", ls="none", label="truth x*")
    ax.set(xlim=(-extent, extent), ylim=(-extent, extent), xlabel="x1", ylabel="x2", aspect="equal",
           title=title or "posterior samples vs exact density")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    k = exact.responsibilities(samples).argmax(1)
    freq = torch.bincount(k, minlength=len(exact.weights)).double() / len(samples)
    top = torch.argsort(exact.weights, descending=True)[:8]
    idx = np.arange(len(top))
    axb.bar(idx - 0.2, exact.weights[top].numpy(), 0.4, label="exact posterior weight")
    axb.bar(idx + 0.2, freq[top].numpy(), 0.4, label="sampler frequency")
    axb.set_xticks(idx, [f"({m[0]:.0f},{m[1]:.0f})" for m in exact.means[top].numpy()], rotation=45, fontsize=8)
    axb.set(xlabel="posterior mode (centre)", ylabel="probability", title="mode weights: exact vs sampled")
    axb.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _distinct_samples(posterior, k: int) -> torch.Tensor:
    """``k`` different samples to show: the first ``k`` of an equally weighted posterior; for a weighted
    one, ``k`` particles drawn by weight without replacement (seeded), heaviest first. (Resampling with
    replacement would show the same particle twice.)"""
    if posterior.log_weights is None:
        return posterior.samples[:k]
    w = posterior.weights().detach().to(torch.float64).cpu()
    k = min(k, int((w > 0).sum()))
    idx = torch.multinomial(w, k, replacement=False, generator=torch.Generator().manual_seed(0))
    idx = idx[torch.argsort(w[idx], descending=True)]
    return posterior.samples[idx.to(posterior.samples.device)]


def _image(t) -> np.ndarray:
    """A 2-D array for imshow from a sample ``(1, H, W)``, ``(C, H, W)`` (first channel) or ``(H, W)``."""
    a = torch.as_tensor(t).detach().cpu().to(torch.float64).numpy()
    while a.ndim > 2:
        a = a[0]
    return a


#: longest text taken from a file's attributes into a figure (units, names): longer ones are cut with an ellipsis
MAX_LABEL = 60


def _short(text) -> str:
    """``text`` as one line of at most :data:`MAX_LABEL` characters (attributes of a file can be anything)."""
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def plot_image_posterior(posterior, *, title: str = "", max_samples: int = 3):
    """Truth, direct reconstruction, posterior mean, pixel-wise standard deviation, error and samples.

    Panels share one colour scale for every image in physical units (the truth's range, or the
    mean's when no truth is known); the standard deviation and the absolute error share a second
    scale, so "the uncertainty is about the size of the error" can be read off the colours. The
    direct reconstruction (FBP, zero-filled, adjoint) comes from the posterior's
    ``extras["measurement_view"]`` when present; problems without one (Navier-Stokes, FWI) show the
    measurement itself from ``extras["measurement_image"]`` on its own colour scale and units (shot
    gathers: the first shot). Samples after the first channel are not shown (shot gathers show the
    first shot).
    Samples holding NaN or Inf are named in a red note under the title.
    """
    mean, std = _image(posterior.mean()), _image(posterior.std())
    truth = None if posterior.truth is None else _image(posterior.truth)
    view = posterior.extras.get("measurement_view") if posterior.extras else None
    view = None if view is None else _image(view)
    units = _short(posterior.units or "a.u.")
    ref = truth if truth is not None else mean
    vmin, vmax = _finite_min(ref), _finite_max(ref)
    if not vmax > vmin:
        vmax = vmin + 1.0
    signed = vmin < 0 < vmax and min(-vmin, vmax) > 0.05 * max(-vmin, vmax)
    if signed:  # vorticity, pressure: a diverging map centred on zero
        vmax = max(-vmin, vmax)
        vmin = -vmax
    cmap = "RdBu_r" if signed else "gray"
    samples = _distinct_samples(posterior, min(max_samples, posterior.num_samples))
    meta = posterior.config.get("measurements", {})
    panels = []
    if truth is not None:
        panels.append(("truth", truth, "img"))
    if view is not None:
        panels.append((_short(meta.get("view") or "direct reconstruction"), view, "img"))
    y_raw = posterior.extras.get("measurement_image") if posterior.extras else None
    if view is None and y_raw is not None:  # no direct reconstruction (PDEs, FWI): the measurement itself
        y_img = _image(y_raw)
        first_shot = " (first shot)" if y_raw.ndim > 2 and y_raw.shape[0] > 1 else ""
        panels.append((f"measurement y {'x'.join(map(str, y_img.shape))}{first_shot}", y_img, "meas"))
    panels.append((f"posterior mean ({posterior.num_samples} samples)", mean, "img"))
    panels.append(("pixel-wise std", std, "unc"))
    if truth is not None:
        panels.append(("|mean - truth|", np.abs(mean - truth), "unc"))
    for i in range(len(samples)):
        panels.append((f"sample {i + 1}", _image(samples[i]), "img"))
    ncol = min(4, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 3.1 * nrow), squeeze=False)
    umax = max(_finite_max(std), _finite_max(np.abs(mean - truth)) if truth is not None else 0.0) or 1.0
    shape = mean.shape
    aspect = "equal" if max(shape) / max(1, min(shape)) < 4 else "auto"
    for ax, (name, a, kind) in zip(axes.flat, panels, strict=False):
        if kind == "img":
            im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax,
                           aspect=aspect, interpolation="nearest")
            label = units
        elif kind == "meas":  # own colour scale and units: y need not be in x's units or range; clipped at the
            # 99th percentile of |y| so that reflections show beside a shot gather's direct arrival
            ya = float(np.percentile(np.abs(a), 99)) or float(np.max(np.abs(a))) or 1.0
            y_signed = float(np.min(a)) < 0
            im = ax.imshow(a, cmap="RdBu_r" if y_signed else "gray", vmin=-ya if y_signed else float(np.min(a)),
                           vmax=ya, aspect="equal" if max(a.shape) / max(1, min(a.shape)) < 4 else "auto",
                           interpolation="nearest")
            label = _short(meta.get("y_units") or "a.u.")
        else:
            im = ax.imshow(a, cmap="magma", vmin=0.0, vmax=umax, aspect=aspect, interpolation="nearest")
            label = units
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label(label, fontsize=7)
        cb.ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    d = posterior.diagnostics
    if not title:
        sampler = (posterior.config.get("sampler", {}).get("class", "")
                   or posterior.config.get("kernel", {}).get("class", ""))
        # no bare dash when both are unknown
        title = " — ".join(_short(p) for p in (meta.get("problem", ""), sampler) if p)
        if "psnr" in d:
            title += f": mean PSNR {d['psnr']:.1f} dB"
            title += f", SSIM {d['ssim']:.3f}" if "ssim" in d else ""
            title += f", rel. L2 {d['relative_l2']:.3f}"
            if "coverage_90" in d:
                title += f", 90% interval coverage {100 * d['coverage_90']:.0f}%"
    note = _non_finite_note(posterior)
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=10, color="firebrick" if note else "black")
    fig.tight_layout()
    return fig


def _finite_min(a) -> float:
    """Smallest finite entry (0 when there is none: an all-NaN panel still gets a colour scale)."""
    f = np.asarray(a)[np.isfinite(a)]
    return float(f.min()) if f.size else 0.0


def _finite_max(a) -> float:
    """Largest finite entry (0 when there is none)."""
    f = np.asarray(a)[np.isfinite(a)]
    return float(f.max()) if f.size else 0.0


def _non_finite_note(posterior) -> str:
    """A line for the title when samples hold NaN or Inf (the mean, std and errors are then NaN there), else ''."""
    x = torch.as_tensor(posterior.samples)
    bad = ~torch.isfinite(x.reshape(x.shape[0], -1))
    if not bool(bad.any()):
        return ""
    k, px = int(bad.any(1).sum()), int(bad.any(0).sum())
    return (f"note: {k} of {x.shape[0]} samples contain NaN or Inf ({px} pixels): the mean, std and errors are "
            "undefined there (blank)")
