"""Write the notebooks in notebooks/ from this source (committed without outputs).

    python scripts/make_notebooks.py

Run from the repository root by path; it needs ``nbformat`` (the test extra).
"""
import nbformat as nbf


def nb(cells, path):
    n = nbf.v4.new_notebook()
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.cells = [nbf.v4.new_markdown_cell(c[1]) if c[0] == "md" else nbf.v4.new_code_cell(c[1]) for c in cells]
    nbf.write(n, path)

SETUP = '''import os
import torch

# CI runs every notebook with INVERSE_NOTEBOOK_SMALL=1: tiny sizes, a few steps (minutes, not hours)
SMALL = os.environ.get("INVERSE_NOTEBOOK_SMALL") == "1"
torch.set_num_threads(1)   # on a small shared CPU one thread is usually the fastest'''

nb([
("md", """# Posterior sampling for sparse-view CT and accelerated MRI

A diffusion prior (`phantoms-64`, trained in this repository on random ellipse phantoms) combined
with a forward model gives a **posterior**: many plausible images consistent with the data. Its mean
is a reconstruction, its pixel-wise standard deviation says where the data leave the image
uncertain. This notebook walks through the three steps of the command line in Python:
`simulate` -> `reconstruct` -> `plot`."""),
("code", SETUP),
("md", """## 1. Simulate measurements

`simulate` draws a held-out phantom (not a training example), applies the forward model and adds
Gaussian noise at 2% of the data's RMS. The returned object is what `inverse simulate` writes to
NetCDF: the forward model can be rebuilt from the file alone."""),
("code", '''from inverse.measurements import simulate, open_measurements

m = simulate("ct", options={"size": 64, "angles": 20}, seed=0)
print(m.forward_model.config()["class"], "measurement", tuple(m.y.shape), "noise sigma", round(m.noise.sigma, 4))
m.to_netcdf("ct-measurements.nc", overwrite=True)
m = open_measurements("ct-measurements.nc")      # the same problem, rebuilt from the file'''),
("md", """## 2. Sample the posterior

`reconstruct` loads the prior, runs the sampler (DPS here; settings tuned per problem) and returns
a `Posterior` with samples in physical units, cost counters and error metrics against the truth."""),
("code", '''from inverse.reconstruction import reconstruct, format_summary

steps, n = (3, 2) if SMALL else (50, 8)
post = reconstruct(m, "phantoms-64", "dps", num_samples=n, steps=steps, seed=0)
print(format_summary(post))'''),
("md", """## 3. Look at the uncertainty

The figure shows the truth, the filtered back-projection (the classical answer), the posterior mean,
the pixel-wise standard deviation and the absolute error on one colour scale, and a few samples.
Where the standard deviation is large the samples disagree: the data do not pin those pixels down."""),
("code", '''from inverse.figures import plot_image_posterior

fig = plot_image_posterior(post)
q05, q95 = post.quantile([0.05, 0.95])
inside = ((m.truth >= q05) & (m.truth <= q95)).double().mean()
print(f"the 90% pixel-wise intervals contain {100 * float(inside):.1f}% of the true pixels")
post.to_netcdf("ct-posterior.nc", overwrite=True)   # xarray / NetCDF; 'inverse plot ct-posterior.nc' draws it'''),
("md", """## The same for 4x accelerated single-coil MRI

Only the problem name changes. The direct reconstruction is now the zero-filled inverse FFT, whose
aliasing the prior removes."""),
("code", '''m_mri = simulate("mri", options={"size": 64, "acceleration": 4.0}, seed=1)
post_mri = reconstruct(m_mri, "phantoms-64", "dps", num_samples=n, steps=steps, seed=0)
print(format_summary(post_mri))
fig = plot_image_posterior(post_mri)'''),
], "notebooks/01_ct_mri_posterior.ipynb")

nb([
("md", """# Navier-Stokes: the initial vorticity from a later, subsampled snapshot, with EnKG

The forward model solves the 2-D vorticity equation (Re 200, Kolmogorov forcing) from t = 0 to
T = 1 and observes every 4th grid point. We never differentiate the solver: ensemble Kalman
diffusion guidance (EnKG, Zheng et al. 2024) moves an ensemble of diffusion-prior samples with
Kalman updates built from forward-model evaluations only, so the same code works for black-box
simulators. Plain ensemble Kalman inversion (EKI) is the classical baseline."""),
("code", SETUP),
("code", '''from inverse.measurements import simulate
from priors import GaussianPrior, load_prior, shipped_priors

m = simulate("navier-stokes", options={"size": 64, "factor": 4, "T": 1.0, "dt": 5e-3}, seed=0)
print("observed", tuple(m.y.shape), "of the final vorticity; noise sigma", round(m.noise.sigma, 3))
if "ns-vorticity-64" in shipped_priors():
    prior = load_prior("ns-vorticity-64")          # trained here on spun-up vorticity snapshots
else:                                              # a fresh checkout without the trained prior
    prior = GaussianPrior(torch.zeros(1, 64, 64), std=4.8, dtype=torch.float32)
print(type(prior).__name__, tuple(prior.shape))'''),
("md", """## EnKG and EKI with the same ensemble size

`reconstruct` takes any sampler by name; `num_samples` is the ensemble size. The summary counts
network evaluations and forward-model (PDE) solves: EnKG uses no gradients at all. Its guidance
scale defaults to 0.75 here (`inverse.reconstruction.DEFAULT_SETTINGS`): InverseBench's 2, tuned for
2048 members, collapses an ensemble of a few dozen onto an over-amplified field (`BENCHMARKS.md`)."""),
("code", '''from inverse.reconstruction import reconstruct, format_summary

J, steps = (8, 4) if SMALL else (64, 30)
post_enkg = reconstruct(m, prior, "enkg", num_samples=J, steps=steps, seed=0)
print(format_summary(post_enkg))
post_eki = reconstruct(m, prior, "eki", num_samples=J, seed=0,
                       sampler_options={"num_iterations": 2 if SMALL else 10, "prior_steps": steps})
print(format_summary(post_eki))'''),
("code", '''from inverse.figures import plot_image_posterior

fig = plot_image_posterior(post_enkg, title="EnKG: initial vorticity (1/s)")'''),
("md", """The ensemble spread (pixel-wise standard deviation) is EnKG's uncertainty estimate. Ensemble
Kalman methods are exact only for linear-Gaussian problems; for a strongly non-linear map such as
this one they are an approximation whose error shrinks with the ensemble size (see
`BENCHMARKS.md`)."""),
], "notebooks/02_navier_stokes_enkg.ipynb")

nb([
("md", """# Calibrating physical parameters with NumPyro

A handful of physical constants from data, with honest uncertainty: here the transverse relaxation
time T2 of a tissue from 16 spin-echo amplitudes, S(TE) = S0 exp(-TE / T2), with the noise level
unknown too. The sampler is NumPyro's NUTS (several chains, float64); the result is an ArviZ
`InferenceData`."""),
("code", SETUP),
("code", '''import numpyro.distributions as dist
from inverse.calibration import calibrate, format_summary
from inverse.calibration.models import T2Relaxation

model = T2Relaxation()
y = model.simulate({"S0": 1.0, "T2": 70.0}, sigma=0.02, seed=0)
draws = 100 if SMALL else 1000
idata = calibrate(model, y, priors={"T2": dist.Uniform(10, 300)}, sigma=dist.HalfNormal(0.1),
                  num_chains=2 if SMALL else 4, num_warmup=draws, num_samples=draws, seed=0)
print(format_summary(idata))'''),
("md", """R-hat near 1 and no divergences mean the chains agree. The posterior of T2 is the answer: its
mean and its 90% interval."""),
("code", '''import numpy as np

t2 = idata.posterior["T2"].values.ravel()
print(f"T2 = {t2.mean():.1f} ms, 90% interval [{np.quantile(t2, 0.05):.1f}, {np.quantile(t2, 0.95):.1f}] ms (truth 70)")'''),  # noqa: E501
("md", """## Plots

Trace and pair plots (ArviZ), written atomically as PNG files; `inverse plot` does the same for a
result file written by `inverse calibrate`."""),
("code", '''from inverse.calibration.plots import plot_pair, plot_trace

plot_trace(idata, "t2-trace.png", overwrite=True)
plot_pair(idata, "t2-pair.png", overwrite=True)'''),
("md", """## Your own model

Any JAX function of a parameter dict is a model; bounded priors are handled by NumPyro's transforms."""),
("code", '''import jax.numpy as jnp

t = jnp.linspace(0.0, 5.0, 20)
y_decay = 2.0 * np.exp(-0.7 * np.asarray(t)) + 0.05 * np.random.default_rng(0).standard_normal(20)
idata2 = calibrate(lambda th: th["a"] * jnp.exp(-th["k"] * t), y_decay,
                   {"a": dist.Normal(1.0, 2.0), "k": dist.LogNormal(0.0, 1.0)}, sigma=0.05,
                   num_chains=2, num_warmup=draws, num_samples=draws, seed=1)
print(format_summary(idata2))'''),
], "notebooks/03_calibration.ipynb")

nb([
("md", """# Two-level MCMC for a PDE-governed field (Darcy flow)

The log-permeability of a porous medium from 25 pressure sensors. The prior is a Matern Gaussian
random field (16 Karhunen-Loeve modes); the accurate model is a 32 x 32 Darcy solver, the cheap one
the same solver on a 16 x 16 grid. Delayed acceptance lets the cheap model propose and the accurate
one correct, so the draws are exact for the accurate model; a reference Gaussian fitted on the cheap
level (generalised pCN) makes the proposals large. Background and the full benchmark:
`docs/mcmc.md`."""),
("code", SETUP),
("code", '''from inverse.problems import darcy_two_level_problem
from priors.function_space import StandardGaussian
from samplers.mcmc import Potential

# Matern prior x = m0 + sum_k sqrt(mu_k) xi_k phi_k (16 modes); Darcy solver on 32 x 32 and on 16 x 16; noise 0.01
darcy = darcy_two_level_problem(32, 16, 0.01, truth_seed=1)
prior, problem, coarse_problem, truth = darcy.prior, darcy.problem, darcy.coarse_problem, darcy.problem.truth

measure = StandardGaussian(16)                           # the chains move in the KL coefficients xi
fine = Potential(problem, prior.field, name="fine")
coarse = Potential(coarse_problem, prior.field, name="coarse-grid")
u0 = measure.sample(4, torch.Generator().manual_seed(3))'''),
("md", """## 1. Plain pCN on the accurate model

pCN (Cotter et al. 2013) is the baseline: every step costs one accurate solve, and with informative
data its steps must be small."""),
("code", '''from samplers.mcmc import PCN, sample_chains

iters = 300 if SMALL else 2000
pcn = sample_chains(PCN(fine, measure, 0.2), u0, iters, warmup=iters // 4, target_acceptance=0.25, seed=0)
s = pcn.summary()
print(f"pCN: ESS {s['ess_min']:.0f}, R-hat {s['rhat_max']:.2f}, {s['fine_solves']} fine solves")'''),
("md", """## 2. Delayed acceptance with generalised pCN

A pilot on the coarse grid alone fits a reference Gaussian; the coarse sub-chains then move by
generalised pCN (Rudolf and Sprungk 2018) and only their end points meet the accurate solver. The
chains start where the pilot ended."""),
("code", '''from samplers.mcmc import MLDA, pilot_reference

ref, u_start, _ = pilot_reference(coarse, measure, u0, 300 if SMALL else 1000, warmup=100, seed=0)
da = sample_chains(MLDA([coarse, fine], measure, 10, 0.5, randomize=True, reference=ref), u_start,
                   60 if SMALL else 300, warmup=20, target_acceptance=0.25, adapt_every=2, seed=0)
s = da.summary()
print(f"delayed acceptance: ESS {s['ess_min']:.0f}, R-hat {s['rhat_max']:.2f}, {s['fine_solves']} fine solves, "
      f"acceptance {s['acceptance']}")'''),
("md", """## 3. The posterior field

`to_posterior` maps the draws to fields in physical units: mean, pixel-wise standard deviation,
NetCDF; ArviZ gives the diagnostics."""),
("code", '''from inverse.figures import plot_image_posterior

post = da.to_posterior(prior.field, truth=truth)
print(f"RMS error of the mean {float((post.mean() - truth).pow(2).mean().sqrt()):.3f} "
      f"(prior pointwise std {float(prior.pointwise_std().mean()):.2f})")
fig = plot_image_posterior(post, title="log-permeability")
post.to_netcdf("darcy-posterior.nc", overwrite=True)
da.to_inference_data()                                # arviz.InferenceData: az.summary, az.plot_trace ...'''),
], "notebooks/04_two_level_mcmc.ipynb")
