"""Contract of every diffusion sampler: seeded runs are bit-identical, another seed differs, and running
never mutates the sampler's configuration (one test for all, instead of a copy per sampler file)."""

import pytest
import torch

from forward_models import Gaussian, InverseProblem, MatrixOperator
from priors import GaussianPrior
from samplers import (
    DPS,
    MCG,
    ApproximationFreeEnsemble,
    EnsembleKalmanGuidance,
    EnsembleKalmanInversion,
    MCGdiff,
    TwistedDiffusionSampler,
)

F64 = torch.float64

FACTORIES = {
    "dps": lambda: DPS(10), "mcg": lambda: MCG(10), "tds": lambda: TwistedDiffusionSampler(10),
    "mcgdiff": lambda: MCGdiff(10), "afes": lambda: ApproximationFreeEnsemble(10),
    "afes-prior": lambda: ApproximationFreeEnsemble(10, proposal="prior"),
    "enkg": lambda: EnsembleKalmanGuidance(num_steps=10),
    "eki": lambda: EnsembleKalmanInversion(num_iterations=2, prior_steps=5),
}


def _linear_problem():
    g = torch.Generator().manual_seed(0)
    op = MatrixOperator(torch.randn(2, 4, generator=g, dtype=F64), dtype=F64)
    return InverseProblem.simulate(op, Gaussian(0.1), torch.ones(4, dtype=F64), seed=0), GaussianPrior(torch.zeros(4))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_seeded_runs_are_bit_identical_and_do_not_mutate_the_sampler(name):
    problem, prior = _linear_problem()
    sampler = FACTORIES[name]()
    before = dict(vars(sampler))
    a = sampler.sample(problem, prior, 16, seed=3)
    b = sampler.sample(problem, prior, 16, seed=3)
    c = sampler.sample(problem, prior, 16, seed=4)
    assert torch.equal(a.samples, b.samples) and not torch.equal(a.samples, c.samples)
    if a.log_weights is not None:
        assert torch.equal(a.log_weights, b.log_weights)
    assert vars(sampler) == before
