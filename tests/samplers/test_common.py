"""The sampler contract, over every entry of ``samplers.SAMPLERS``: a sampler registered there gets this suite.

Each sampler is built by its command-line name (``get_sampler(name, **SMALL[name])``, few steps for speed) and run
on one linear-Gaussian problem with the analytic prior ``N(0, I)`` and a biased coarse level
(``tests.conftest.linear_problem(coarse=True)``), which every diffusion, SMC, ensemble and MCMC sampler accepts.
The contract: samples of shape ``(num_samples, *prior.shape)`` in the prior's dtype, finite; log-weights (where
weighted) of shape ``(num_samples,)``; positive cost counters; bit-identical runs for a seed and different ones
for another seed; ``sample`` never mutates the sampler; the posterior's config names the sampler, prior, forward
model, noise and seed, as JSON; the callback sees every step of the driver.
"""

import copy
import json

import pytest
import torch

import samplers
from samplers import Sampler, get_sampler
from tests.conftest import linear_problem

NUM_SAMPLES = 16

#: small settings per command-line name, so that the whole suite runs in seconds; a name missing here runs with
#: its defaults
SMALL = {
    "pcn": {"num_steps": 8, "warmup": 4}, "da": {"num_steps": 8, "warmup": 4, "subchain_length": 2},
    "mlda": {"num_steps": 8, "warmup": 4, "subchain_length": 2},
    "afes": {"num_steps": 10}, "dps": {"num_steps": 10}, "mcg": {"num_steps": 10}, "mcgdiff": {"num_steps": 10},
    "tds": {"num_steps": 10}, "enkg": {"num_steps": 10}, "eki": {"num_iterations": 2, "prior_steps": 5},
    # CG stops early once converged; a zero tolerance keeps every step, as the callback test expects
    "exact-gaussian": {"num_steps": 10, "tol": 1e-300},
    "daps": {"num_steps": 10}, "pnp-dm": {"num_steps": 10, "prior_steps": 4, "init_steps": 8},
    "diffpir": {"num_steps": 10}, "ddrm": {"num_steps": 10},
}

#: further settings worth the whole contract: (name, settings, id)
VARIANTS = [("afes", {"num_steps": 10, "proposal": "prior"}, "afes-prior"),
            ("daps", {"num_steps": 10, "likelihood_step": "langevin", "langevin_steps": 5}, "daps-langevin"),
            ("pnp-dm", {"num_steps": 10, "prior_steps": 4, "reweight": False, "likelihood_step": "langevin",
                        "langevin_steps": 5}, "pnp-dm-langevin"),
            ("diffpir", {"num_steps": 10, "likelihood_step": "langevin", "langevin_steps": 5}, "diffpir-gradient")]

#: samplers that need ``forward_model.coarse()``: they run the contract like the others, and refuse a forward
#: model without a coarse level in one line
NEEDS_COARSE = {"da", "mlda"}

CASES = [pytest.param(name, SMALL.get(name, {}), id=name) for name in sorted(samplers.SAMPLERS)]
CASES += [pytest.param(name, settings, id=case_id) for name, settings, case_id in VARIANTS]


def _same(a, b) -> bool:
    """Equality of configuration values that may hold tensors (compared exactly)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.fixture(scope="module")
def runs():
    """``{(name, settings): (sampler, before, [posterior seed 3, seed 3 again, seed 4], steps seen)}``, run once."""
    problem, prior = linear_problem(coarse=True)
    done = {}

    def run(name, settings):
        key = (name, json.dumps(settings, sort_keys=True))
        if key not in done:
            sampler = get_sampler(name, **settings)
            before = copy.deepcopy(vars(sampler))
            seen = []
            posts = [sampler.sample(problem, prior, NUM_SAMPLES, seed=3, callback=lambda s: seen.append(s.step)),
                     sampler.sample(problem, prior, NUM_SAMPLES, seed=3),
                     sampler.sample(problem, prior, NUM_SAMPLES, seed=4)]
            done[key] = sampler, before, posts, seen
        return done[key]

    return run


@pytest.mark.parametrize("name, settings", CASES)
def test_samples_have_the_prior_shape_and_dtype_and_are_finite(runs, name, settings):
    sampler, _, (post, _, _), _ = runs(name, settings)
    _, prior = linear_problem()
    assert isinstance(sampler, samplers.SAMPLERS[name]) and isinstance(sampler, Sampler)
    assert post.samples.shape == (NUM_SAMPLES, *prior.shape)
    assert post.samples.dtype == prior.mean.dtype == torch.float64
    assert torch.isfinite(post.samples).all()
    if post.log_weights is not None:
        assert post.log_weights.shape == (NUM_SAMPLES,)
        assert not torch.isnan(post.log_weights).any() and torch.isfinite(torch.logsumexp(post.log_weights, 0))
    assert post.mean().shape == tuple(prior.shape)


@pytest.mark.parametrize("name, settings", CASES)
def test_cost_counters_are_counted(runs, name, settings):
    _, _, (post, _, _), _ = runs(name, settings)
    d = post.diagnostics
    assert all(isinstance(d[k], int) and d[k] >= 0 for k in ("nfe", "forward_evals", "grad_evals")), d
    assert d["forward_evals"] > 0, "every sampler conditions on the data through the forward model"
    assert d["num_samples"] == NUM_SAMPLES and d["wall_time_s"] > 0


@pytest.mark.parametrize("name, settings", CASES)
def test_seeded_runs_are_bit_identical_and_another_seed_differs(runs, name, settings):
    _, _, (a, b, c), _ = runs(name, settings)
    assert torch.equal(a.samples, b.samples) and not torch.equal(a.samples, c.samples)
    if a.log_weights is not None:
        assert torch.equal(a.log_weights, b.log_weights)
    assert a.diagnostics["nfe"] == b.diagnostics["nfe"] and a.diagnostics["forward_evals"] == b.diagnostics[
        "forward_evals"]


@pytest.mark.parametrize("name, settings", CASES)
def test_sampling_does_not_mutate_the_sampler(runs, name, settings):
    sampler, before, _, _ = runs(name, settings)
    assert _same(vars(sampler), before)
    assert sampler.config() == get_sampler(name, **settings).config()


@pytest.mark.parametrize("name, settings", CASES)
def test_posterior_config_names_the_run(runs, name, settings):
    sampler, _, (post, _, other), _ = runs(name, settings)
    problem, prior = linear_problem(coarse=True)
    cfg = json.loads(json.dumps(post.config))  # JSON, as written into NetCDF
    assert cfg["sampler"] == sampler.config() and cfg["sampler"]["class"] == type(sampler).__name__
    assert cfg["prior"] == prior.config() and cfg["prior"]["class"] == "GaussianPrior"
    assert {k: cfg[k] for k in problem.config()} == json.loads(json.dumps(problem.config()))
    assert cfg["forward_model"]["class"] == "MatrixOperator" and cfg["noise"] == {"class": "Gaussian", "sigma": 0.1}
    assert cfg["seed"] == 3 and other.config["seed"] == 4


@pytest.mark.parametrize("name, settings", CASES)
def test_the_callback_sees_every_step(runs, name, settings):
    sampler, _, _, seen = runs(name, settings)
    assert seen == list(range(1, sampler.num_steps() + 1))


@pytest.mark.parametrize("name", sorted(NEEDS_COARSE))
def test_multilevel_samplers_refuse_a_model_without_a_coarse_level(name):
    problem, prior = linear_problem()
    with pytest.raises(ValueError, match="no coarser one"):
        get_sampler(name).sample(problem, prior, NUM_SAMPLES)
