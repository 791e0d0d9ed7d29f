"""Unconditional samples: ``Prior.sample(n, steps=, seed=, physical=)`` over the prior registry of the contract suite.

Every prior class (and every shipped prior) draws ``(n, *shape)`` samples reproducibly from a seed, a different
seed gives different draws, ``physical=True`` is ``to_physical`` of the model-space draw, and bad arguments raise
:class:`priors.PriorError` before any work. Exact samplers are checked against their moments.
"""

from __future__ import annotations

import pytest
import torch

from priors import GaussianFieldPrior, GaussianMixturePrior, GaussianPrior, Prior, PriorError
from tests.priors.test_contract import EXAMPLES, _prior

F64 = torch.float64


@pytest.fixture(params=sorted(EXAMPLES))
def name(request) -> str:
    return request.param


def test_seed_reproducible_and_physical(name):
    prior = _prior(name)
    x = prior.sample(2, steps=2, seed=11)
    assert x.shape == (2, *prior.shape) and x.dtype == prior.dtype
    assert torch.equal(prior.sample(2, steps=2, seed=11), x)
    assert not torch.equal(prior.sample(2, steps=2, seed=12), x)
    torch.testing.assert_close(prior.sample(2, steps=2, seed=11, physical=True), prior.to_physical(x))
    # a seed is a CPU generator seeded with it
    assert torch.equal(prior.sample(2, torch.Generator().manual_seed(11), num_steps=2), x)


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "positive integer"), ({"n": 1.5}, "positive integer"), ({"n": True}, "positive integer"),
    ({"n": 2, "steps": 0}, "steps"), ({"n": 2, "steps": 2.5}, "steps"),
    ({"n": 2, "seed": -1}, "seed"), ({"n": 2, "seed": 2**63}, "seed"), ({"n": 2, "seed": "1"}, "seed"),
    ({"n": 2, "seed": 1, "generator": torch.Generator()}, "not both"),
])
@pytest.mark.parametrize("which", ["gaussian", "gaussian-mixture", "gaussian-field", "edm"])
def test_bad_arguments_are_refused(which, kwargs, match):
    with pytest.raises(PriorError, match=match):
        _prior(which).sample(**kwargs)


def test_ode_sampler_needs_two_steps():
    with pytest.raises(PriorError, match="at least 2 steps"):
        _prior("edm").sample(2, steps=1, seed=0)


def test_largest_seed_is_accepted():
    x = GaussianPrior(torch.zeros(3), std=1.0).sample(2, seed=2**63 - 1)
    assert x.shape == (2, 3) and bool(torch.isfinite(x).all())


def test_exact_gaussian_moments():
    mean, std = torch.tensor([1.0, -2.0, 0.5], dtype=F64), torch.tensor([0.5, 2.0, 1.0], dtype=F64)
    x = GaussianPrior(mean, torch.diag(std**2)).sample(40_000, seed=3)
    torch.testing.assert_close(x.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(x.std(0), std, atol=0.03, rtol=0)


def test_exact_mixture_weights():
    prior = GaussianMixturePrior(torch.tensor([[-5.0], [5.0]]), torch.tensor([0.25, 0.75]))
    x = prior.sample(20_000, seed=4)
    assert abs(float((x > 0).double().mean()) - 0.75) < 0.015


def test_field_physical_units():
    g = torch.Generator().manual_seed(0)
    field = GaussianFieldPrior.fit(torch.randn(32, 1, 4, 4, generator=g, dtype=F64), scale=2.0, offset=10.0)
    x = field.sample(4000, seed=5, physical=True)
    assert abs(float(x.mean()) - 10.0) < 0.2  # offset + scale * (mean about 0)


def test_ode_sample_is_close_to_exact_for_a_gaussian():
    """The base class's probability-flow ODE on N(m, v): its draws have the prior's moments."""
    prior = GaussianPrior(torch.tensor([2.0, -1.0], dtype=F64), torch.diag(torch.tensor([0.25, 4.0], dtype=F64)))
    x = Prior.sample(prior, 20_000, steps=40, seed=6)
    torch.testing.assert_close(x.mean(0), torch.tensor([2.0, -1.0], dtype=F64), atol=0.05, rtol=0)
    torch.testing.assert_close(x.std(0), torch.tensor([0.5, 2.0], dtype=F64), atol=0.05, rtol=0)


def test_batch_size_does_not_change_the_samples():
    prior = _prior("edm")
    x = prior.sample(5, steps=3, seed=9)
    torch.testing.assert_close(prior.sample(5, steps=3, seed=9, batch_size=2), x, rtol=0, atol=1e-3)  # float32 convs
    with pytest.raises(PriorError, match="batch_size"):
        prior.sample(5, steps=3, seed=9, batch_size=0)
