"""Quality checks of a shipped prior: unconditional samples against held-out ground truths, and
denoising PSNR against the best Gaussian blur; results go into the model card (``prior.json``,
key ``quality``) and a figure of samples beside training examples (``samples.png``) in the prior's
directory.

    python scripts/prior_quality.py --prior phantoms-64 --dataset phantoms --size 64

``--prior`` is a shipped name or a prior's directory. Run from the repository root by path; it imports only
the installed packages.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from inverse.datasets import make_dataset
from inverse.figures import save_figure
from priors import load_prior
from priors.loading import shipped_priors_dir
from priors.quality import quality_report, unconditional_samples
from samplers.atomic import atomic_output

__all__ = ["figure", "main"]


def figure(samples, truths, prior, path):
    """Training examples (top row) beside prior samples (bottom row), in physical units."""
    import matplotlib.pyplot as plt

    k = min(6, len(samples))
    fig, axes = plt.subplots(2, k, figsize=(2.2 * k, 4.6))
    lo = float(prior.to_physical(truths[:k]).min())
    hi = float(prior.to_physical(truths[:k]).max())
    for j in range(k):
        for row, (src, label) in enumerate([(truths, "training data"), (samples, "prior sample")]):
            ax = axes[row, j]
            im = ax.imshow(prior.to_physical(src[j, 0]).numpy(), cmap="viridis", vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label)
    fig.colorbar(im, ax=axes, shrink=0.8, label=prior.normalisation.units or "value")
    fig.suptitle(f"{prior.card.get('name', '')}: {prior.card.get('training', {}).get('steps', '?')} training steps")
    save_figure(fig, path, overwrite=True)


def main(argv=None) -> int:
    """Compute the quality report, write it into the card and draw the figure."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prior", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--num-samples", type=int, default=64)
    p.add_argument("--ode-steps", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    prior = load_prior(args.prior)
    truths, _, _ = make_dataset(args.dataset, 2 * args.num_samples, args.size, seed=1000)  # held out: unseen seed
    t0 = time.time()
    report = quality_report(prior, truths, args.num_samples, args.ode_steps, seed=0)
    report["time_s"] = time.time() - t0
    report["held_out_seed"] = 1000
    directory = Path(args.prior) if Path(args.prior).is_dir() else shipped_priors_dir() / args.prior
    card_path = directory / "prior.json"
    card = json.loads(card_path.read_text())
    card["quality"] = report
    with atomic_output(card_path, overwrite=True) as tmp:  # a killed run never leaves half a card
        tmp.write_text(json.dumps(card, indent=2))
    samples = unconditional_samples(prior, 6, args.ode_steps, seed=1)
    figure(samples, truths, prior, directory / "samples.png")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
