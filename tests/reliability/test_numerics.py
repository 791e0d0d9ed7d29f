"""Numerical guards: NaN / Inf in particles, weights and gradients are reported with the step; SMC
weight collapse is reported in the diagnostics and as a warning."""

import math
import warnings

import pytest
import torch

from forward_models import Gaussian, InverseProblem, MatrixOperator
from inverse.cli import main
from inverse.problems import gmm_case
from priors import EDMPrior, GaussianPrior
from priors.base import Prior
from priors.loading import save_prior
from priors.training import build_unet
from samplers import (
    DPS,
    EnsembleKalmanGuidance,
    MCGdiff,
    Posterior,
    SamplerError,
    TwistedDiffusionSampler,
)
from samplers.smc import Move, SMCSampler, WeightCollapseWarning
from tests.conftest import linear_problem


class _BadAt(Prior):
    """Standard normal prior whose denoiser returns NaN below ``sigma_bad``."""

    def __init__(self, d, sigma_bad):
        super().__init__()
        self.shape, self.sigma_min, self.sigma_max, self.sigma_bad = (d,), 1e-3, 10.0, sigma_bad

    def denoise(self, x, sigma):
        out = x / (1.0 + sigma.reshape(-1, 1) ** 2)
        return torch.where(sigma.reshape(-1, 1) < self.sigma_bad, torch.full_like(out, math.nan), out)


def test_nan_from_the_denoiser_names_the_step():
    with pytest.raises(SamplerError, match=r"non-finite values at sigma = .* \(at step \d+/10\)"):
        DPS(num_steps=10).sample(linear_problem()[0], _BadAt(4, 1.0).double(), 4)


def test_non_finite_gradient_is_reported():
    class Overflow(MatrixOperator):
        def forward(self, x):
            return super().forward(x) * torch.tensor(math.inf, dtype=x.dtype)

    op = Overflow(torch.ones(2, 4, dtype=torch.float64))
    problem = InverseProblem(op, torch.zeros(2, dtype=torch.float64), Gaussian(0.1))
    with pytest.raises(SamplerError, match=r"gradient is NaN or Inf .* \(at step 1/5\)"):
        DPS(num_steps=5).sample(problem, GaussianPrior(torch.zeros(4)), 4)


def test_forward_model_nan_stops_the_ensemble():
    class Unstable(MatrixOperator):  # a simulator that blows up for some inputs
        def forward(self, x):
            y = super().forward(x)
            return torch.where(x[:, :1] > 0, torch.full_like(y, math.nan), y)

    op = Unstable(torch.ones(1, 2, dtype=torch.float64))
    problem = InverseProblem(op, torch.tensor([0.5], dtype=torch.float64), Gaussian(0.1))
    with pytest.raises(SamplerError, match=r"NaN or Inf for \d+ of 16 particles .*step"):
        EnsembleKalmanGuidance(num_steps=8).sample(problem, GaussianPrior(torch.zeros(2)), 16)


class _Weights(SMCSampler):
    """Bootstrap SMC whose post-move weight is ``value`` at step ``at``."""

    def __init__(self, value, at=2):
        super().__init__(num_steps=5)
        self.value, self.at = value, at

    def initial(self, problem, prior, n, generator, model, sigmas):
        return Move(torch.zeros(n, *prior.shape, dtype=prior.dtype), torch.zeros(n, dtype=torch.float64))

    def move(self, state, x, cache, aux, s, s_next):
        incr = torch.zeros(len(x), dtype=torch.float64)
        if state.step + 1 == self.at:
            incr = torch.full_like(incr, self.value)
        return Move(x, incr)


@pytest.mark.parametrize("value, message", [(math.nan, "NaN log-weights at step 2"),
                                            (math.inf, "infinite log-weights at step 2"),
                                            (-math.inf, "every particle weight is zero at step 2")])
def test_smc_weight_failures_name_the_step(value, message):
    with pytest.raises(SamplerError, match=message):
        _Weights(value).sample(*linear_problem(), 8)


def test_smc_weight_collapse_is_reported():
    case = gmm_case(4, 2, seed=0)
    with pytest.warns(WeightCollapseWarning, match="collapsed"):
        post = TwistedDiffusionSampler(num_steps=5).sample(case.problem, case.prior, 8, seed=0)
    d = post.diagnostics
    assert d["weight_collapse"] is True and d["min_ess"] < 1.5 and 0 <= d["min_ess_step"] <= 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeightCollapseWarning)
        healthy = MCGdiff(num_steps=20).sample(case.problem, case.prior, 256, seed=0)
    assert healthy.diagnostics["weight_collapse"] is False and healthy.diagnostics["min_ess"] > 2.56


def test_posterior_refuses_collapsed_weights():
    with pytest.raises(ValueError, match="collapsed"):
        Posterior(torch.zeros(3, 2), torch.tensor([math.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="collapsed"):
        Posterior(torch.zeros(3, 2), torch.full((3,), -math.inf))


def test_command_line_reports_a_diverged_run_in_one_line(tmp_path, ct_files, capsys):
    y, _ = ct_files
    net = build_unet(16, 1, widths=(8, 8))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(math.nan)
    bad = save_prior(EDMPrior(net, (1, 16, 16)), tmp_path / "nan-prior")
    out = tmp_path / "p.nc"
    code = main(["reconstruct", str(y), "--prior", str(bad), "--steps", "3", "--num-samples", "2",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "non-finite" in err and "step 1/3" in err and err.count("\n") == 0
    assert not out.exists()
