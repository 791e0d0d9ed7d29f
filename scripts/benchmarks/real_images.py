"""Real images unlike the training data: CT and MRI 64 x 64 on held-out scikit-image photographs.

Truths: the held-out images of ``scripts/make_user_images.py`` (``HELD_OUT``: never used to train
``real-patches-64`` or to fit the natural-image Gaussian field below), converted to grey, resized to
64 x 64 (Pillow bilinear) and scaled to [0, 1], exactly as ``inverse simulate --truth img.png`` does.
Problems as in the imaging suite (``ct-30``, ``mri-x4``, ...), noise 2% of the clean data's RMS, seed 0.
Each method sees the truth in its prior's units (``real-patches-64``: grey levels 0-255, the others 0-1), as a
user's data would be; PSNR (range of the truth) and the normalised misfit do not depend on the units, and the
default DPS / MCG step follows them (:func:`inverse.reconstruction.rescale_guidance`).

Methods (8 posterior samples each; PSNR of the mean, normalised misfit, pixel coverage of the 5-95%
interval, and whether the summary's mismatch warning fired, :mod:`inverse.diagnostics`):

- ``view``: FBP / zero-filled (:func:`inverse.problems.measurement_view`);
- ``default``: ``inverse reconstruct`` with no options: DPS with ``phantoms-64``, and, where that posterior does
  not explain the data, DPS again with the generic ``real-patches-64`` (in ``phantoms-64``'s units), keeping the
  posterior whose misfit is nearer 1 (:func:`inverse.reconstruction.reconstruct`, ``fallback``);
- ``dps@phantoms-64``: DPS with ``phantoms-64`` only (``--no-fallback``);
- ``dps@real-patches-64``, ``mcg@real-patches-64``: the prior trained on patches of other real images;
- ``exact@natural-field``: :class:`samplers.ExactGaussian` under a stationary Gaussian field fitted to
  600 crops of the training sources of ``real-patches-64`` (:meth:`priors.GaussianFieldPrior.fit`).

Usage::

    python scripts/benchmarks/real_images.py --problems ct-30 mri-x4 --out data/benchmarks/real_images.jsonl
    python scripts/benchmarks/real_images.py --table data/benchmarks/real_images.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import ResultStore

__all__ = ["IMAGES", "PHANTOMS", "PROBLEMS", "METHODS", "natural_field_prior", "truth_image", "main"]

IMAGES = ("camera", "moon", "coins", "astronaut", "brick", "page", "text", "chelsea", "coffee", "rocket")
PROBLEMS = {"ct-30": ("ct", {"angles": 30}), "mri-x4": ("mri", {"acceleration": 4.0}),
            "mri-x8": ("mri", {"acceleration": 8.0}), "mri-mc-x4": ("mri-multicoil", {"acceleration": 4.0}),
            "mri-mc-x8": ("mri-multicoil", {"acceleration": 8.0})}
METHODS = ("view", "default", "dps@phantoms-64", "dps@real-patches-64", "mcg@real-patches-64", "exact@natural-field")


#: in-distribution controls: held-out phantoms (the problem's own generator, seeds never used in training or tuning)
PHANTOMS = ("phantom-10000", "phantom-10001", "phantom-10002", "phantom-10003", "phantom-10004")


def truth_image(name: str) -> np.ndarray:
    """A held-out scikit-image picture as ``inverse simulate --truth`` reads it: grey, 64 x 64, [0, 1]; or, for
    ``phantom-SEED``, the 64 x 64 phantom the CT generator draws with that seed."""
    if name.startswith("phantom-"):
        from inverse.measurements import draw_truth

        return np.asarray(draw_truth("ct", {"size": 64}, int(name.split("-")[1])), dtype=np.float64).reshape(1, 64, 64)
    import skimage.data as sd
    from PIL import Image

    img = np.asarray(getattr(sd, name)(), dtype=np.float64)
    if img.ndim == 3:
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114])
    img = np.clip(img / (255.0 if img.max() > 1.5 else 1.0), 0, 1)
    small = Image.fromarray(np.uint8(np.round(255 * img))).resize((64, 64), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float64)[None] / 255.0


def natural_field_prior(num: int = 600, seed: int = 0):
    """Stationary Gaussian field fitted to random 64 x 64 crops of the training sources (model space [-1, 1])."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from make_user_images import _crop, train_sources

    from priors import GaussianFieldPrior

    rng = np.random.default_rng(seed)
    sources = [im for ims in train_sources().values() for im in ims]
    crops = np.stack([_crop(sources[int(rng.integers(len(sources)))], 64, rng) for _ in range(num)])
    crops = crops.astype(np.float64)
    crops = crops / (255.0 if crops.max() > 1.5 else 1.0)
    z = torch.from_numpy(2 * crops - 1)[:, None]
    return GaussianFieldPrior.fit(z, scale=0.5, offset=0.5, floor=1e-6)


def _score(post, m, view=None) -> dict:
    d = post.diagnostics
    out = {k: d.get(k) for k in ("psnr", "misfit", "coverage_90", "relative_l2", "wall_time_s")}
    out["warnings"] = list(d.get("warnings") or [])
    out["mismatch"] = any("does not explain the data" in w for w in out["warnings"])
    return out


def run_one(label: str, image: str, method: str, priors: dict, num_samples: int = 8) -> dict:
    """One (problem, image, method) cell with ``num_samples`` posterior samples."""
    from inverse.measurements import simulate
    from inverse.metrics import psnr
    from inverse.problems import measurement_view
    from inverse.reconstruction import reconstruct

    problem, opts = PROBLEMS[label]
    truth = truth_image(image)
    prior = priors.get(method.split("@")[-1]) if "@" in method else None
    norm = getattr(prior, "normalisation", None)
    if norm is not None:  # the truth in the prior's units (real-patches-64: grey levels 0-255), as a user's data are
        truth = (norm.offset - abs(norm.scale)) + 2 * abs(norm.scale) * truth
    m = simulate(problem, options=opts, truth=truth, seed=0)
    t0 = time.perf_counter()
    if method == "view":
        v = measurement_view(problem, m.forward_model, m.y[None])
        return {"psnr": psnr(v[0].double(), m.truth), "wall_time_s": time.perf_counter() - t0}
    if method == "default":
        post = reconstruct(m, num_samples=num_samples, seed=0)
        return {**_score(post, m), "prior_used": post.config.get("prior_fallback", {}).get("used", "phantoms-64")}
    sampler, prior = method.split("@")
    settings = {"num_steps": 300} if sampler == "exact" else None
    post = reconstruct(m, priors[prior], "exact-gaussian" if sampler == "exact" else sampler,
                       num_samples=num_samples,
                       seed=0, sampler_options=settings)
    return _score(post, m)


def table(path) -> str:
    """Markdown: mean PSNR, worst gain over the view, misfit, coverage and warning rate per problem, method and kind
    of truth (the real images, then the held-out phantoms)."""
    rows = [{**r, **r["key"]} for r in ResultStore(path).records()]
    view = {(r["problem"], r["image"]): r["psnr"] for r in rows if r["method"] == "view"}
    lines = ["| problem | truths | method | n | mean PSNR | mean gain over view | worst gain | >= view + 2 dB | "
             "median misfit | mean coverage 90% | mismatch warnings |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label in PROBLEMS:
        for kind in ("real", "phantoms"):
            present = {r["method"] for r in rows}
            for method in [*METHODS, *sorted(present - set(METHODS))]:
                rs = [r for r in rows if r["problem"] == label and r["method"] == method and r.get("psnr") is not None
                      and r["image"].startswith("phantom-") == (kind == "phantoms")]
                if not rs:
                    continue
                gains = [r["psnr"] - view[(label, r["image"])] for r in rs if (label, r["image"]) in view]
                mis = [r["misfit"] for r in rs if r.get("misfit") is not None]
                cov = [r["coverage_90"] for r in rs if r.get("coverage_90") is not None]
                warn = sum(bool(r.get("mismatch")) for r in rs)
                lines.append(f"| {label} | {kind} | {method} | {len(rs)} | {np.mean([r['psnr'] for r in rs]):.2f} | "
                             f"{np.mean(gains):+.2f} | {min(gains):+.2f} | {sum(g >= 2 for g in gains)}/{len(gains)} | "
                             + (f"{np.median(mis):.2f}" if mis else "-") + " | "
                             + (f"{np.mean(cov):.2f}" if cov else "-") + " | "
                             + (f"{warn}/{len(rs)}" if method != "view" else "-") + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run the missing cells (appending to ``--out``), or print the table of a results file."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   help=f"any of {', '.join(METHODS)}, or SAMPLER@PRIOR with a sampler of samplers.SAMPLERS and a prior"
                        " "
                        "phantoms-64 or real-patches-64 (e.g. daps@phantoms-64)")
    p.add_argument("--images", nargs="+", default=list(IMAGES))
    p.add_argument("--out", default="data/benchmarks/real_images.jsonl")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--num-samples", type=int, default=8,
                   help="posterior samples (rows with other than 8 are labelled METHOD#N)")
    p.add_argument("--table", default=None, metavar="JSONL")
    a = p.parse_args(argv)
    from samplers import SAMPLERS

    for m in a.methods:
        name, _, prior_name = m.partition("@")
        if m not in METHODS and not (name in SAMPLERS and prior_name in ("phantoms-64", "real-patches-64")):
            p.error(f"unknown method {m!r}")
    if a.table:
        print(table(a.table))
        return 0
    torch.set_num_threads(a.threads)
    from priors import load_prior

    store = ResultStore(a.out)
    priors = {"phantoms-64": load_prior("phantoms-64"), "real-patches-64": load_prior("real-patches-64")}
    if "exact@natural-field" in a.methods:
        priors["natural-field"] = natural_field_prior()
    for label in a.problems:
        for method in a.methods:
            name = method if a.num_samples == 8 or method == "view" else f"{method}#{a.num_samples}"
            for image in a.images:
                key = {"problem": label, "image": image, "method": name}
                if store.done(key):
                    continue
                try:
                    rec = run_one(label, image, method, priors, a.num_samples)
                except Exception as e:  # noqa: BLE001 - a failed cell is recorded, not fatal
                    rec = {"failed": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
                print(json.dumps(store.add(key, {"threads": a.threads, **rec})), flush=True)
    print(table(a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
