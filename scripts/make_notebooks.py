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

nb([
("md", """# Real data in: a scanner's k-space, a CT sinogram and your own training images

Every other notebook simulates its measurements. This one starts from **real scanner images that
nobody here made**: the 64 x 64 MR slice `MR_small.dcm` and the 128 x 128 CT slice `CT_small.dcm`
that pydicom ships as test files. What is real and what is not:

- **MRI**: the image is real; its k-space is the image's centred, orthonormal 2-D FFT (what a
  single-coil Cartesian scanner records, up to its own noise, which the image already carries),
  undersampled 4x and written as fastMRI's HDF5 layout. Import, noise estimate and reconstruction are
  the path a scanner's file takes.
- **CT**: no sinogram ships with any package here, so the sinogram **is computed from the real CT image
  with this library's own parallel-beam operator** (plus 2% Gaussian noise), exported to `.npy` and
  imported. The import path is real; the physics is simulated.
- **Training**: `inverse train-prior --data` fine-tunes a shipped prior on a folder of PNG crops of the
  two images, for a few steps: a demonstration budget, to show the command, not to improve the prior.

Every step is cheap (few sampler steps, few samples); the figures are for reading the workflow, not
for judging the quality."""),
("code", SETUP + """

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.data import get_testdata_file

from inverse.figures import plot_image_posterior

%matplotlib inline
# (inverse.figures draws off-screen for files; the line above shows its figures in the notebook)
INVERSE = shutil.which("inverse") or str(Path(sys.executable).with_name("inverse"))


def inverse_cli(*args):
    \"\"\"Run ``inverse ARGS`` as a shell would and print what it says on stdout.\"\"\"
    r = subprocess.run([INVERSE, *map(str, args)], capture_output=True, text=True)
    print(r.stdout.strip())
    if r.returncode:
        raise RuntimeError(r.stderr.strip().splitlines()[-1])


def grey_levels(name):
    \"\"\"A pydicom test image (modality rescale applied) mapped linearly to grey levels 0-255.\"\"\"
    ds = pydicom.dcmread(get_testdata_file(name))
    a = ds.pixel_array * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
    return 255 * (a - a.min()) / (a.max() - a.min())


def psnr(x, ref):
    return 10 * np.log10(255.0 ** 2 / np.mean((np.asarray(x, dtype=np.float64) - ref) ** 2))"""),
("md", """## 1. A scanner's k-space file

The MR slice in grey levels (0-255: the units of the `real-patches-64` prior, and of PNG training
images), its k-space, and a 4x Cartesian mask: the 8 central phase-encoding columns plus 8 random
others. Unmeasured columns are zero, as in fastMRI's files (`kspace`: slices x ky x kx, complex)."""),
("code", """import h5py

mr = grey_levels("MR_small.dcm")                                     # (64, 64)
kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(mr), norm="ortho"))
rng = np.random.default_rng(0)
mask = np.zeros(64, dtype=bool)
mask[28:36] = True
mask[rng.choice(np.flatnonzero(~mask), 8, replace=False)] = True
with h5py.File("mr_small.h5", "w") as f:
    f["kspace"] = (kspace * mask)[None].astype(np.complex64)       # 1 slice x ky x kx
print(f"{mask.sum()} of 64 columns sampled")"""),
("md", """## 2. Import it

`inverse import` reads the file, infers the mask from the zero columns, estimates the noise level from
the outer k-space corners (it says so), and writes the measurement NetCDF that `inverse reconstruct`
reads, with the provenance recorded. In a shell this is one line:
`inverse import mr_small.h5 --problem mri --out mr.nc`."""),
("code", """from inverse.measurements import open_measurements

inverse_cli("import", "mr_small.h5", "--problem", "mri", "--out", "mr.nc", "--overwrite")
m = open_measurements("mr.nc")
print("noise sigma", round(m.noise.sigma, 3), "| command line:", m.provenance.get("command_line"))"""),
("md", """## 3. Reconstruct and ask whether the posterior explains the data

The default sampler (DPS) with the prior trained on crops of real images, `real-patches-64`. DPS's
guidance scale follows the measurement's units: the tuned value for MRI (10) is for images in [0, 1],
so for grey levels 0-255 it is divided by 255. The summary ends with the misfit diagnostics
(`docs/diagnostics.md`): the normalised misfit of the posterior mean against its expected range under
the noise model, and a `warning:` line when the posterior does not explain the data. The truth is
known here only because the k-space was made from the image: with a scanner's file it is not."""),
("code", """from inverse.problems import measurement_view
from inverse.reconstruction import reconstruct, format_summary

steps, n = (10, 4) if SMALL else (50, 8)
post = reconstruct(m, "real-patches-64", "dps", num_samples=n, steps=steps, seed=0,
                   sampler_options={"zeta": 10.0 / 255})
print(format_summary(post))
zero_filled = measurement_view("mri", m.forward_model, m.y[None])[0, 0].numpy()
print(f"PSNR against the real image: posterior mean {psnr(post.mean()[0], mr):.1f} dB, "
      f"zero-filled {psnr(zero_filled, mr):.1f} dB")
fig = plot_image_posterior(post, title="MR_small.dcm, 4x: real-patches-64, DPS")"""),
("md", """## 4. The wrong prior: the diagnostics say so

`phantoms-64` was trained on ellipse phantoms in [0, 1]. `inverse.measurements.from_arrays` wraps
arrays you have already read (here the imported k-space, rescaled to [0, 1]). On this brain slice the
posterior mean's misfit lies far above its expected range and the summary warns: the prior does not
fit these measurements (`docs/diagnostics.md`)."""),
("code", """from inverse.measurements import from_arrays

k01 = (m.y[0] + 1j * m.y[1]).numpy() / 255
m01 = from_arrays("mri", k01, mask=mask.astype(float), noise_std=m.noise.sigma / 255)
post_ph = reconstruct(m01, "phantoms-64", "dps", num_samples=n, steps=steps, seed=0)
print(format_summary(post_ph))
print("warnings:", len(post_ph.diagnostics["warnings"]))"""),
("md", """## 5. CT: a sinogram exported to `.npy`, then imported

**Said plainly: no CT sinogram ships with any installed package, so this one is computed from the real
CT image with this library's parallel-beam operator** (30 views over 180 degrees, 2% noise), then saved
as `.npy` as an export from another tool would be. The import (angles given, noise estimated by the
wavelet MAD) and everything after it are the path a measured sinogram takes. `CT_small.dcm` is among
the sources `real-patches-64` was trained on, so this CT slice is not new to that prior.

With the test run's 10 steps the summary warns that the posterior does not explain the data (misfit
about 2.6): 10 DPS steps are too few for 30 views. At the full setting (50 steps, 8 samples) the
mean's misfit is 0.85 and there is no warning. The diagnostics separate "not converged / wrong prior"
from "fits" either way."""),
("code", """from inverse.measurements import simulate

ct = np.asarray(Image.fromarray(np.uint8(np.round(grey_levels("CT_small.dcm")))).resize(
    (64, 64), Image.Resampling.BILINEAR), dtype=np.float64)           # 128 x 128 -> 64 x 64
sim = simulate("ct", options={"size": 64, "angles": 30}, truth=ct[None], seed=0)   # OUR operator
np.save("ct_sinogram.npy", sim.y.numpy()[0])                           # (30 angles, 91 detectors)
inverse_cli("import", "ct_sinogram.npy", "--problem", "ct", "--angles", "0:180:6", "--out", "ct.nc", "--overwrite")
m_ct = open_measurements("ct.nc")
print(f"noise sigma: true {sim.noise.sigma:.1f}, estimated {m_ct.noise.sigma:.1f}")
post_ct = reconstruct(m_ct, "real-patches-64", "dps", num_samples=n, steps=steps, seed=0,
                      sampler_options={"zeta": 0.3 / 255})
print(format_summary(post_ct))
fbp = measurement_view("ct", m_ct.forward_model, m_ct.y[None])[0, 0].numpy()
print(f"PSNR: posterior mean {psnr(post_ct.mean()[0], ct):.1f} dB, FBP {psnr(fbp, ct):.1f} dB")
fig = plot_image_posterior(post_ct, title="CT_small.dcm, 30 views: real-patches-64, DPS")"""),
("md", """## 6. Fine-tune a prior on your own images

A folder of PNG crops of the two real images stands for the user's training images.
`inverse train-prior --data my_images --init real-patches-64` starts from the shipped prior's network
and weights and writes a new prior whose card holds the new data's normalisation (grey levels). The
step count is **a demonstration budget** (10 steps in the test run): it shows the command and the
files; a useful fine-tune runs thousands of steps (`docs/training.md`). `--quality-samples 0` skips
the quality report, which needs more held-out images than this folder has."""),
("code", """import json

out = Path("my_images")
out.mkdir(exist_ok=True)
for name in ("MR_small.dcm", "CT_small.dcm"):
    g = np.uint8(np.round(grey_levels(name)))
    for i in range(12):                                            # random square crops, resized to 64 x 64
        s = int(rng.integers(g.shape[0] // 2, g.shape[0] + 1))
        r, c = rng.integers(0, g.shape[0] - s + 1, 2)
        crop = Image.fromarray(g[r:r + s, c:c + s]).resize((64, 64), Image.Resampling.BILINEAR)
        crop.save(out / f"{name[:2]}-{i:02d}.png")
inverse_cli("train-prior", "--data", "my_images", "--init", "real-patches-64", "--steps", 10 if SMALL else 300,
            "--batch-size", 4, "--quality-samples", 0, "--threads", 1, "--units", "grey level (0-255)",
            "--out", "my-prior", "--overwrite", "--quiet")
card = json.loads(Path("my-prior/prior.json").read_text())
print("normalisation in the new card:", card["normalisation"])"""),
("code", """post_ft = reconstruct(m, "my-prior", "dps", num_samples=n, steps=steps, seed=0,
                      sampler_options={"zeta": 10.0 / 255})
print(format_summary(post_ft))
print(f"PSNR against the real image: fine-tuned {psnr(post_ft.mean()[0], mr):.1f} dB, "
      f"real-patches-64 {psnr(post.mean()[0], mr):.1f} dB")
fig = plot_image_posterior(post_ft, title="MR_small.dcm, 4x: the fine-tuned prior")"""),
("md", """## The same on the command line

```
inverse import mr_small.h5 --problem mri --out mr.nc
inverse reconstruct mr.nc --prior real-patches-64 -s zeta=0.04 --out post.nc
inverse plot post.nc
inverse train-prior --data my_images --init real-patches-64 --steps 2000 --out my-prior
inverse reconstruct mr.nc --prior my-prior -s zeta=0.04 --out post-ft.nc
```"""),
], "notebooks/real_data.ipynb")
