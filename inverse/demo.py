"""``inverse demo``: the main job on an embedded default.

Default (:func:`run_ct_demo`): sparse-view CT (20 parallel-beam angles, 2% noise) of a held-out
ellipse phantom, reconstructed with the shipped ``phantoms-64`` prior by DPS; writes the
measurement ``measurements.nc``, the posterior ``posterior.nc`` and the figure ``posterior.png``
(truth, filtered back-projection, posterior mean, pixel-wise std, error, samples).

``inverse demo --toy`` (:func:`run_demo`): a 2-D Gaussian-mixture posterior (the exact-posterior
benchmark of Cardoso et al. 2024 in d = 2 with one measurement), samples drawn over the exact
posterior's contours; it needs no network and shows how far a sampler is from the exact answer.
"""

from __future__ import annotations

from pathlib import Path

import torch

from inverse.errors import UserError
from inverse.figures import plot_mixture_posterior_2d, save_figure
from inverse.metrics import mode_weight_tv, sliced_wasserstein
from inverse.problems import gmm_case
from samplers import get_sampler
from samplers.atomic import OutputExistsError

__all__ = ["run_demo", "run_ct_demo", "CT_DEMO"]

#: the CT demo's problem options, noise, sampler and sample count
CT_DEMO = {"options": {"size": 64, "angles": 20}, "noise_rel": 0.02, "seed": 0, "num_samples": 8, "steps": 50}


def run_demo(out_dir, *, sampler: str = "dps", num_samples: int = 1000, steps: int = 100, seed: int = 0,
             overwrite: bool = False, progress: bool = True) -> dict:
    """Sample the 2-D mixture posterior, write ``posterior.nc`` and ``posterior.png`` into ``out_dir``.

    Returns a summary dict (paths, sliced Wasserstein against exact samples and its floor, time).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory")
    nc, png = out / "posterior.nc", out / "posterior.png"
    for p in (nc, png):
        if p.exists() and not overwrite:
            raise OutputExistsError(f"{p} already exists (pass --overwrite to replace it)")
    if int(num_samples) < 2:
        raise UserError(f"--num-samples must be at least 2, got {num_samples}")
    case = gmm_case(2, 1, seed)
    kwargs = {"zeta": 0.3} if sampler == "dps" else {"alpha": 0.3} if sampler == "mcg" else {}
    from inverse.reconstruction import steps_setting

    smp = get_sampler(sampler, **{steps_setting(sampler): steps}, **kwargs)
    post = smp.sample(case.problem, case.prior, num_samples, seed=seed, progress=progress)
    post.diagnostics["exact_log_evidence"] = case.log_evidence
    g = torch.Generator().manual_seed(seed + 1)
    ref, ref2 = case.posterior.sample(num_samples, g), case.posterior.sample(num_samples, g)
    x = post.resample(num_samples, g).cpu()
    sw, floor = sliced_wasserstein(x, ref), sliced_wasserstein(ref2, ref)
    tv = mode_weight_tv(x, case.posterior)
    post.diagnostics.update({"sliced_wasserstein": sw, "sliced_wasserstein_floor": floor, "mode_weight_tv": tv})
    out.mkdir(parents=True, exist_ok=True)
    post.to_netcdf(nc, overwrite=overwrite)
    A = case.problem.forward_model.matrix()
    fig = plot_mixture_posterior_2d(post, case.posterior, truth=case.problem.truth, y=case.problem.y, A=A,
                                    title=f"{sampler.upper()}, {steps} steps: sliced W1 {sw:.2f} (floor {floor:.2f})")
    save_figure(fig, png, overwrite=overwrite)
    return {"netcdf": str(nc), "figure": str(png), "sliced_wasserstein": sw, "floor": floor, "mode_tv": tv,
            "wall_time_s": post.diagnostics["wall_time_s"], "nfe": post.diagnostics["nfe"]}


def run_ct_demo(out_dir, *, sampler: str = "dps", num_samples: int | None = None, steps: int | None = None,
                seed: int = 0, overwrite: bool = False, progress: bool = True) -> dict:
    """Sparse-view CT with the shipped ``phantoms-64`` prior (module docstring); returns paths and numbers."""
    from inverse.figures import plot_image_posterior
    from inverse.measurements import simulate
    from inverse.reconstruction import format_summary, reconstruct

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory")
    paths = {"measurements": out / "measurements.nc", "netcdf": out / "posterior.nc", "figure": out / "posterior.png"}
    for p in paths.values():
        if p.exists() and not overwrite:
            raise OutputExistsError(f"{p} already exists (pass --overwrite to replace it)")
    n = CT_DEMO["num_samples"] if num_samples is None else int(num_samples)
    if n < 2:
        raise UserError(f"--num-samples must be at least 2, got {num_samples}")
    m = simulate("ct", options=CT_DEMO["options"], seed=seed, noise_rel=CT_DEMO["noise_rel"])
    post = reconstruct(m, "phantoms-64", sampler, num_samples=n, seed=seed,
                       steps=CT_DEMO["steps"] if steps is None else steps, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    m.to_netcdf(paths["measurements"], overwrite=overwrite)
    post.to_netcdf(paths["netcdf"], overwrite=overwrite)
    save_figure(plot_image_posterior(post), paths["figure"], overwrite=overwrite)
    return {**{k: str(v) for k, v in paths.items()}, "summary": format_summary(post), **post.diagnostics}
