"""Network priors: exact conversions (VP epsilon / v / sample, flow matching, EDM), diffusers layout
loading and saving, the probability-flow map, and clear loading errors."""

import json

import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

from priors import (
    EDMPrior,
    FlowMatchingPrior,
    GaussianPrior,
    Normalisation,
    PriorLoadError,
    VPDiffusionPrior,
    latent_to_sample,
    load_prior,
    sample_to_latent,
    save_prior,
)

F64 = torch.float64


def tiny_unet(seed=0):
    torch.manual_seed(seed)
    return UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, layers_per_block=1).eval()


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_diffusers_saved_pipeline_loads_and_converts_exactly(tmp_path, prediction_type):
    unet = tiny_unet()
    sched = DDPMScheduler(num_train_timesteps=100, prediction_type=prediction_type)
    DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(tmp_path / "pipe")  # diffusers' own layout
    prior = load_prior(tmp_path / "pipe")
    assert isinstance(prior, VPDiffusionPrior) and prior.shape == (1, 8, 8)
    t = 37
    abar = sched.alphas_cumprod[t].to(F64)
    sigma = ((1 - abar) / abar).sqrt()
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    # by hand: x_t = sqrt(abar) x_sigma, network at integer timestep t, then the prediction type's formula
    x_t = (abar.sqrt() * x.to(F64)).float()
    with torch.no_grad():
        out = unet(x_t, torch.full((3,), float(t))).sample.to(F64)
        got = prior.denoise(x, torch.full((3,), float(sigma)))
    want = {"epsilon": x.to(F64) - sigma * out,
            "v_prediction": abar.sqrt() * x_t.to(F64) - (1 - abar).sqrt() * out,
            "sample": out}[prediction_type]
    torch.testing.assert_close(got.to(F64), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(prior.timestep(sigma.reshape(1)), torch.tensor([float(t)], dtype=F64))


class _ExactGaussianEps(torch.nn.Module):
    """eps_hat = E[eps | x_t] = sqrt(1 - abar_t) x_t for data x0 ~ N(0, I), integer timesteps."""

    def __init__(self, abar):
        super().__init__()
        self.abar = abar
        self.w = torch.nn.Parameter(torch.zeros(1, dtype=F64))

    def forward(self, x_t, t):
        a = self.abar[t.round().long()].reshape(-1, 1).to(x_t.dtype)
        return (1 - a).sqrt() * x_t + 0 * self.w


class _ExactGaussianVelocity(torch.nn.Module):
    """v = E[eps - x0 | x_t] for x0 ~ N(0, I) on x_t = (1 - t) x0 + t eps; time input 1000 t."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1, dtype=F64))

    def forward(self, x_t, time):
        t = (time / 1000.0).reshape(-1, 1)
        return (t - (1 - t)) / ((1 - t) ** 2 + t**2) * x_t + 0 * self.w


def test_vp_and_flow_conversions_reproduce_the_exact_gaussian_denoiser():
    sched = DDPMScheduler(num_train_timesteps=1000)
    abar = sched.alphas_cumprod.to(F64)
    vp = VPDiffusionPrior(_ExactGaussianEps(abar), abar, "epsilon", (4,))
    flow = FlowMatchingPrior(_ExactGaussianVelocity(), (4,))
    exact = GaussianPrior(torch.zeros(4, dtype=F64))
    x = 3 * torch.randn(5, 4, dtype=F64)
    for t in [0, 10, 500, 999]:
        s = ((1 - abar[t]) / abar[t]).sqrt().expand(5)
        torch.testing.assert_close(vp.denoise(x, s), exact.denoise(x, s))
    for s in [0.01, 1.0, 30.0]:
        sig = torch.full((5,), s, dtype=F64)
        torch.testing.assert_close(flow.denoise(x, sig), exact.denoise(x, sig))


def test_edm_prior_saves_and_loads_in_diffusers_layout(tmp_path):
    prior = EDMPrior(tiny_unet(), (1, 8, 8), sigma_data=0.5, normalisation=Normalisation(1500.0, 3000.0, "m/s"))
    path = save_prior(prior, tmp_path / "p", {"name": "tiny", "training": {"steps": 0}})
    assert {f.name for f in path.iterdir()} >= {"config.json", "diffusion_pytorch_model.safetensors",
                                               "scheduler_config.json", "prior.json"}
    assert json.loads((path / "scheduler_config.json").read_text())["_class_name"] == "EDMEulerScheduler"
    back = load_prior(path)
    assert isinstance(back, EDMPrior) and back.normalisation.units == "m/s"
    x = torch.randn(2, 1, 8, 8)
    s = torch.tensor([0.1, 5.0])
    with torch.no_grad():
        torch.testing.assert_close(back.denoise(x, s), prior.denoise(x, s))
    assert float(back.to_physical(torch.tensor(1.0))) == 4500.0
    with pytest.raises(FileExistsError):
        save_prior(prior, path)


def test_probability_flow_map_converges_for_a_gaussian_and_is_invertible():
    """N(0, I) prior: the exact flow maps z to x = z; Heun's error falls as 1/steps^2 (measured
    8.3e-3 at 40 steps, 1.9e-3 at 80, 4.1e-4 at 160 for z = 1)."""
    prior = GaussianPrior(torch.zeros(3, dtype=F64))
    z = torch.randn(6, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    errs = {}
    for n in (40, 80, 160):
        x, nfe = latent_to_sample(prior, z, num_steps=n)
        assert nfe == 2 * n - 1
        errs[n] = float((x - z).abs().max())
    assert errs[80] < errs[40] / 3 and errs[160] < errs[80] / 3 and errs[160] < 2e-3
    x, _ = latent_to_sample(prior, z, num_steps=160)
    z_back, nfe_up = sample_to_latent(prior, x, num_steps=160)
    assert nfe_up == 318
    torch.testing.assert_close(z_back, z, atol=2e-3, rtol=0)


def test_loading_errors_are_clear(tmp_path):
    with pytest.raises(PriorLoadError, match="unknown prior"):
        load_prior("no-such-prior")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PriorLoadError, match="not a diffusers model"):
        load_prior(tmp_path / "empty")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(PriorLoadError, match="is a file"):
        load_prior(tmp_path / "f.txt")
    with pytest.raises(PriorLoadError, match="not in the local cache"):
        load_prior("google/ddpm-cifar10-32")
    d = tmp_path / "noweights"
    d.mkdir()
    tiny_unet().save_config(d)
    with pytest.raises(PriorLoadError, match="safetensors"):
        load_prior(d)


def test_deepinv_denoiser_is_used_as_is():
    import deepinv

    from priors import DeepInvDenoiserPrior

    torch.manual_seed(0)
    model = deepinv.models.DRUNet(in_channels=1, out_channels=1, pretrained=None).eval()
    prior = DeepInvDenoiserPrior(model, (1, 16, 16))
    x = torch.randn(2, 1, 16, 16, dtype=F64)
    s = torch.tensor([0.1, 0.7], dtype=F64)
    with torch.no_grad():
        got = prior.denoise(x, s)
        want = model(x.float(), s.float()).to(F64)
    assert got.dtype == F64
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="shape"):
        prior.denoise(torch.zeros(2, 1, 8, 8), s)
