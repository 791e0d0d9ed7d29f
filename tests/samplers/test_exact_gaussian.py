"""ExactGaussian: exact posterior moments of linear-Gaussian problems, refusals, counters."""

import pytest
import torch

from forward_models import ForwardModel, Gaussian, InverseProblem, MatrixOperator
from priors import GaussianFieldPrior, GaussianPrior
from samplers import ExactGaussian, SamplerConfigError
from tests.conftest import linear_problem


def _exact(A, y, sigma, mean, cov):
    """Posterior mean and covariance of ``y = A x + sigma e``, ``x ~ N(mean, cov)`` (dense formulas)."""
    K = cov @ A.T @ torch.linalg.inv(A @ cov @ A.T + sigma**2 * torch.eye(len(y), dtype=A.dtype))
    return mean + K @ (y - A @ mean), cov - K @ A @ cov


@pytest.mark.parametrize("dense", [False, True])
def test_moments_match_the_closed_form_posterior(dense):
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 5, generator=g, dtype=torch.float64)
    mean = torch.linspace(-1, 1, 5, dtype=torch.float64)
    if dense:
        L = torch.randn(5, 5, generator=g, dtype=torch.float64)
        cov = L @ L.T + 0.5 * torch.eye(5, dtype=torch.float64)
        prior = GaussianPrior(mean, cov)
    else:
        cov = 0.7**2 * torch.eye(5, dtype=torch.float64)
        prior = GaussianPrior(mean, std=0.7)
    problem = InverseProblem.simulate(MatrixOperator(A, dtype=torch.float64), Gaussian(0.2),
                                      torch.ones(5, dtype=torch.float64), seed=1)
    mu, C = _exact(A, problem.y, 0.2, mean, cov)
    post = ExactGaussian(num_steps=50, tol=1e-12).sample(problem, prior, 20000, seed=0)
    s = post.samples.double()
    se = (C.diagonal() / len(s)).sqrt()
    assert ((s.mean(0) - mu).abs() < 5 * se).all()
    emp = torch.cov(s.T)
    assert torch.allclose(emp, C, atol=0.05 * float(C.diagonal().max()))


def test_gaussian_field_prior_on_an_image_matches_the_dense_posterior():
    g = torch.Generator().manual_seed(2)
    n = 8
    z = torch.randn(40, 1, n, n, generator=g, dtype=torch.float64).cumsum(-1).cumsum(-2) / n
    prior = GaussianFieldPrior.fit(z, scale=2.0, offset=0.5, floor=1e-3)
    A = torch.randn(20, n * n, generator=g, dtype=torch.float64)

    class Op(ForwardModel):
        linear = True
        input_shape, output_shape = (1, n, n), (20,)

        def forward(self, x):
            return x.reshape(len(x), -1) @ A.T

        def adjoint(self, y):
            return (y @ A).reshape(len(y), 1, n, n)

    op = Op()
    truth = prior.to_physical(prior.sample(1, torch.Generator().manual_seed(5))[0].double())
    problem = InverseProblem.simulate(op, Gaussian(0.1), truth, seed=0)
    # dense covariance of the field in physical units: C = scale^2 F^* P F, built column by column
    eye = torch.eye(n * n, dtype=torch.float64).reshape(-1, 1, n, n)
    root = prior.power.double().sqrt()
    half = torch.fft.irfft2(torch.fft.rfft2(eye, norm="ortho") * root, s=(n, n), norm="ortho").reshape(n * n, -1)
    cov = 4.0 * half @ half.T
    mean = 0.5 + 2.0 * prior.mean_field.double().reshape(-1)
    mu, C = _exact(A, problem.y, 0.1, mean, cov)
    post = ExactGaussian(num_steps=200, tol=1e-12).sample(problem, prior, 4000, seed=0)
    s = post.samples.double().reshape(len(post.samples), -1)
    se = (C.diagonal() / len(s)).sqrt()
    assert ((s.mean(0) - mu).abs() < 5 * se).all()
    assert torch.allclose(s.var(0), C.diagonal(), rtol=0.12)


def test_refuses_non_gaussian_priors_and_counts_cost():
    from priors import GaussianMixturePrior

    problem, prior = linear_problem()
    mix = GaussianMixturePrior(torch.zeros(2, 4, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    with pytest.raises(SamplerConfigError, match="needs a Gaussian prior"):
        ExactGaussian().sample(problem, mix, 4, seed=0)
    post = ExactGaussian(num_steps=3, tol=1e-300).sample(problem, prior, 4, seed=0)
    assert post.diagnostics["forward_evals"] == 12 and post.diagnostics["nfe"] == 0
    with pytest.raises(SamplerConfigError):
        ExactGaussian(num_steps=0)
