"""Matplotlib figures, written atomically (Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from samplers.atomic import atomic_output  # noqa: E402

__all__ = ["save_figure", "plot_mixture_posterior_2d"]


def save_figure(fig, path, *, overwrite: bool = False, dpi: int = 120) -> Path:
    """Save ``fig`` atomically as PNG (temporary file, then rename) and close it."""
    with atomic_output(path, overwrite=overwrite, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


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
