"""The prior contract, run over one registry: an example of every prior class and every shipped prior.

A new prior class gets the whole suite by one line in :data:`CLASSES` (``test_registry_covers_every_prior_class``
fails until it has one); a new shipped prior joins by itself (:func:`priors.shipped_priors`, as ``inverse
priors`` lists them). The checks: ``denoise`` keeps the batch's shape and dtype and rejects a wrong shape;
``to_physical`` / ``from_physical`` invert each other; ``D(x, sigma) -> x`` as ``sigma -> 0``; Tweedie's
formula ``D(x, sigma) = x + sigma^2 grad log p_sigma(x)`` where ``log p_sigma`` is known exactly; the
JSON description and model card round-trip (through ``save_prior`` / ``load_prior`` where it writes the
class); ``sample`` draws ``(n, *shape)`` reproducibly.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch

import priors
from priors import (
    DeepInvDenoiserPrior,
    EDMPrior,
    FlowMatchingPrior,
    GaussianFieldPrior,
    GaussianMixturePrior,
    GaussianPrior,
    Normalisation,
    Prior,
    PriorError,
    VPDiffusionPrior,
    load_prior,
    save_prior,
    shipped_priors,
)

F64 = torch.float64


def _tiny_unet(seed: int):
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    return UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, layers_per_block=1).eval().requires_grad_(False)


def _alphas_cumprod():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=100).alphas_cumprod


def _spd(d: int, seed: int, k: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(*(() if k is None else (k,)), d, d, generator=g, dtype=F64)
    return a @ a.transpose(-1, -2) / d + 0.1 * torch.eye(d, dtype=F64)


def _field() -> GaussianFieldPrior:
    g = torch.Generator().manual_seed(0)
    rough = torch.randn(64, 1, 4, 4, generator=g, dtype=F64)
    smooth = (rough + rough.roll(1, -1) + rough.roll(1, -2)) / 3  # some spatial correlation
    return GaussianFieldPrior.fit(smooth + 0.3, scale=2.0, offset=1.0, floor=1e-3)


def _mixture_log_prob(prior, x, sigma):
    return prior.log_prob(x, sigma)


def _field_log_prob(prior, x, sigma):
    """``log N(x; m, C + sigma^2 I)`` with the field's covariance ``C`` built densely, column by column."""
    d = math.prod(prior.shape)
    basis = torch.eye(d, dtype=F64).reshape(d, *prior.shape)
    cov = torch.fft.irfft2(prior.power.to(F64) * torch.fft.rfft2(basis, norm="ortho"), s=prior.shape[-2:],
                           norm="ortho").reshape(d, d)
    torch.testing.assert_close(cov, cov.T)  # a covariance: the reference itself is sound
    mean = prior.mean_field.to(F64).reshape(-1)
    return torch.stack([torch.distributions.MultivariateNormal(mean, cov + s**2 * torch.eye(d, dtype=F64))
                        .log_prob(xi.reshape(-1)) for xi, s in zip(x, sigma, strict=True)])


class Example(NamedTuple):
    """A registry entry: how to build the prior, and its exact ``log p_sigma(x)`` where one is known."""

    make: Callable[[], Prior]
    log_prob: Callable[[Prior, torch.Tensor, torch.Tensor], torch.Tensor] | None = None


#: one line per prior class (and variant): a small example instance
CLASSES = {
    "gaussian": Example(lambda: GaussianPrior(torch.linspace(-1, 1, 5), _spd(5, 0)), _mixture_log_prob),
    "gaussian-isotropic": Example(lambda: GaussianPrior(torch.zeros(1, 3, 3), std=0.7), _mixture_log_prob),
    "gaussian-mixture": Example(lambda: GaussianMixturePrior(torch.tensor([[-2.0, 0.0, 1.0], [2.0, 1.0, 0.0]]),
                                                             torch.tensor([0.3, 0.7]), _spd(3, 1, k=2)),
                                _mixture_log_prob),
    "gaussian-mixture-isotropic": Example(lambda: GaussianMixturePrior(torch.randn(
        3, 1, 2, 2, generator=torch.Generator().manual_seed(2)), torch.tensor([0.2, 0.3, 0.5])), _mixture_log_prob),
    "gaussian-field": Example(_field, _field_log_prob),
    "edm": Example(lambda: EDMPrior(_tiny_unet(0), (1, 8, 8), normalisation=Normalisation(1500.0, 3000.0, "m/s"),
                                    card={"name": "tiny-edm"})),
    "edm-padded": Example(lambda: EDMPrior(_tiny_unet(1), (1, 7, 7), card={"name": "tiny-edm-padded"})),
    "vp-epsilon": Example(lambda: VPDiffusionPrior(_tiny_unet(2), _alphas_cumprod(), "epsilon", (1, 8, 8))),
    "vp-v": Example(lambda: VPDiffusionPrior(_tiny_unet(3), _alphas_cumprod(), "v_prediction", (1, 8, 8),
                                             normalisation=Normalisation(0.5, 0.5))),
    "flow": Example(lambda: FlowMatchingPrior(_tiny_unet(4), (1, 8, 8), normalisation=Normalisation(0.5, 0.5),
                                              card={"name": "tiny-flow"})),
    "deepinv": Example(lambda: DeepInvDenoiserPrior(_standard_normal_denoiser(), (1, 4, 4)),
                       lambda prior, x, s: _standard_normal_log_prob(x, s)),
}


def _standard_normal_denoiser():
    """A deepinv ``Denoiser``: the exact MMSE denoiser ``x / (1 + sigma^2)`` of ``N(0, I)``."""
    import deepinv

    class StandardNormalDenoiser(deepinv.models.Denoiser):
        def forward(self, x, sigma, **kwargs):
            return x / (1 + self._handle_sigma(sigma, batch_size=x.shape[0], ndim=x.ndim, device=x.device,
                                               dtype=x.dtype) ** 2)

    return StandardNormalDenoiser()


def _standard_normal_log_prob(x, sigma):
    """``log N(x; 0, (1 + sigma^2) I)`` up to a constant in x."""
    var = (1 + sigma**2).reshape(-1, *([1] * (x.ndim - 1)))
    return (-0.5 * x**2 / var - 0.5 * torch.log(var)).flatten(1).sum(1)


SHIPPED = sorted(shipped_priors())
EXAMPLES = {**CLASSES, **{f"shipped:{n}": Example(functools.partial(load_prior, n)) for n in SHIPPED}}


@functools.cache
def _prior(name: str) -> Prior:
    return EXAMPLES[name].make()


@pytest.fixture(params=sorted(EXAMPLES))
def name(request) -> str:
    return request.param


def _batch(prior: Prior, n: int, seed: int, dtype=F64) -> torch.Tensor:
    """Points of the size of model-space data (entries of order one)."""
    return 0.5 * torch.randn(n, *prior.shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_registry_covers_every_prior_class():
    exported = {getattr(priors, n) for n in priors.__all__}
    classes = {c for c in exported if isinstance(c, type) and issubclass(c, Prior) and c is not Prior}
    covered = {type(_prior(n)) for n in CLASSES}
    assert classes <= covered, f"no registry entry for {sorted(c.__name__ for c in classes - covered)}"


def test_shipped_priors_are_in_the_registry():
    assert SHIPPED, "no shipped prior found (package data priors.shipped)"
    assert {f"shipped:{n}" for n in SHIPPED} <= set(EXAMPLES)


@torch.no_grad()
def test_denoise_keeps_shape_and_dtype(name):
    prior = _prior(name)
    other = F64 if prior.dtype == torch.float32 else torch.float32
    for dtype in (prior.dtype, other):
        x = _batch(prior, 3, 0, dtype)
        out = prior.denoise(x, torch.tensor([0.1, 1.0, 10.0], dtype=dtype))
        assert out.shape == x.shape and out.dtype == dtype, (out.shape, out.dtype)
        assert bool(torch.isfinite(out).all())
    x = _batch(prior, 2, 1, prior.dtype)
    torch.testing.assert_close(prior.denoise(x, torch.tensor(0.5)), prior.denoise(x, torch.full((2,), 0.5)))
    torch.testing.assert_close(prior(x, torch.full((2,), 0.5)), prior.denoise(x, torch.full((2,), 0.5)))
    with pytest.raises(PriorError, match="shape"):
        prior.denoise(torch.zeros(2, *prior.shape, 1, dtype=prior.dtype), torch.ones(2))
    with pytest.raises(PriorError, match="sigma"):
        prior.denoise(x, torch.ones(3))


def test_physical_round_trip(name):
    prior = _prior(name)
    x = _batch(prior, 2, 2)
    torch.testing.assert_close(prior.from_physical(prior.to_physical(x)), x)
    y = prior.to_physical(x)
    torch.testing.assert_close(prior.to_physical(prior.from_physical(y)), y)


@torch.no_grad()
def test_denoiser_tends_to_the_identity_as_sigma_goes_to_zero(name):
    prior = _prior(name)
    x = _batch(prior, 2, 3)
    err = {s: float((prior.denoise(x, torch.full((2,), s, dtype=F64)) - x).abs().max()) for s in (1e-2, 1e-5)}
    assert err[1e-5] < 1e-3 and err[1e-5] <= err[1e-2], err


@pytest.mark.parametrize("sigma", [0.05, 0.5, 5.0])
def test_tweedie_where_the_noised_density_is_exact(name, sigma):
    """``D(x, sigma) = x + sigma^2 grad log p_sigma(x)`` (Karras et al. 2022, eq. 3; Efron 2011)."""
    example = EXAMPLES[name]
    if example.log_prob is None:
        pytest.skip("no exact log p_sigma for this prior")
    prior = _prior(name)
    x = (_batch(prior, 3, 4) + prior.sample(3, torch.Generator().manual_seed(5)).to(F64)).requires_grad_(True)
    s = torch.full((3,), sigma, dtype=F64)
    (grad,) = torch.autograd.grad(example.log_prob(prior, x, s).sum(), x)
    tol = 1e-9 if prior.dtype == F64 else 2e-5
    with torch.no_grad():
        torch.testing.assert_close(prior.denoise(x, s), x + sigma**2 * grad, rtol=tol, atol=tol)


def test_config_and_card_are_json(name):
    prior = _prior(name)
    config = prior.config()
    assert json.loads(json.dumps(config, allow_nan=False)) == config
    assert config["class"] == type(prior).__name__ and config["shape"] == list(prior.shape)
    card = getattr(prior, "card", None)
    if card is not None:
        assert json.loads(json.dumps(card, allow_nan=False)) == card
    if name.startswith("shipped:"):
        assert card == {"name": name.removeprefix("shipped:"), **shipped_priors()[card["name"]]}


@torch.no_grad()
def test_save_and_load_round_trip(name, tmp_path):
    prior = _prior(name)
    if not isinstance(prior, EDMPrior | FlowMatchingPrior):
        pytest.skip("save_prior writes EDM and flow-matching priors")
    back = load_prior(save_prior(prior, tmp_path / "saved", prior.card))
    assert type(back) is type(prior) and back.shape == prior.shape
    assert back.config() == prior.config()
    assert {k: back.card[k] for k in prior.card} == prior.card
    x, s = _batch(prior, 2, 6, prior.dtype), torch.tensor([0.05, 3.0], dtype=prior.dtype)
    assert torch.equal(back.denoise(x, s), prior.denoise(x, s))


def test_sample_shape_dtype_and_seed(name):
    prior = _prior(name)
    steps = {"num_steps": 2} if type(prior).sample is Prior.sample else {}  # the ODE sampler: few steps here
    x = prior.sample(3, torch.Generator().manual_seed(7), **steps)
    assert x.shape == (3, *prior.shape) and x.dtype == prior.dtype, (x.shape, x.dtype)
    assert bool(torch.isfinite(x).all())
    assert torch.equal(prior.sample(3, torch.Generator().manual_seed(7), **steps), x)


def test_base_sample_is_the_probability_flow_map_of_its_noise():
    """For ``N(m, diag(v))`` the probability-flow ODE keeps ``(x_sigma - m) / sqrt(v + sigma^2)`` constant, so it
    maps ``x = sigma_max z`` to ``m + sqrt(v) (sigma_max z - m) / sqrt(v + sigma_max^2)``; Heun's steps approach it."""
    v = torch.tensor([0.25, 4.0], dtype=F64)
    m = torch.tensor([1.0, -2.0], dtype=F64)
    prior = GaussianPrior(m, torch.diag(v))
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(8), dtype=F64)
    want = m + v.sqrt() * (prior.sigma_max * z - m) / (v + prior.sigma_max**2).sqrt()
    err = {n: float((Prior.sample(prior, 5, torch.Generator().manual_seed(8), num_steps=n) - want).abs().max())
           for n in (40, 160)}
    assert err[160] < err[40] / 10 and err[160] < 2e-3, err  # second order: 1 / steps^2
    with pytest.raises(PriorError, match="positive integer"):
        Prior.sample(prior, 0)
