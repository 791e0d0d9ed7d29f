"""Noise models against torch.distributions; InverseProblem validation."""

import math

import pytest
import torch

from forward_models import Gaussian, Inpainting, InverseProblem, MatrixOperator, Poisson, noise_from_config

F64 = torch.float64


def test_gaussian_log_likelihood_exact():
    g = torch.Generator().manual_seed(0)
    yc = torch.randn(3, 5, generator=g, dtype=F64)
    y = torch.randn(3, 5, generator=g, dtype=F64)
    want = torch.distributions.Normal(yc, 0.3).log_prob(y).sum(1)
    torch.testing.assert_close(Gaussian(0.3).log_likelihood(y, yc), want)


def test_poisson_log_likelihood_exact():
    g = torch.Generator().manual_seed(1)
    yc = torch.rand(2, 6, generator=g, dtype=F64) * 4
    noise = Poisson(gain=10.0)
    y = noise.sample(yc, g)
    want = torch.distributions.Poisson(yc * 10).log_prob(y * 10).sum(1)
    torch.testing.assert_close(noise.log_likelihood(y, yc), want)


def test_gaussian_noise_has_its_standard_deviation():
    g = torch.Generator().manual_seed(2)
    y = Gaussian(0.5).sample(torch.zeros(200_000, dtype=F64), g)
    assert abs(float(y.std()) - 0.5) < 0.005


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf"), "abc"])
def test_bad_noise_levels(sigma):
    with pytest.raises(ValueError, match="noise level"):
        Gaussian(sigma)


def test_noise_config_round_trip():
    assert noise_from_config(Gaussian(0.2).config()).sigma == 0.2
    assert noise_from_config(Poisson(3.0).config()).gain == 3.0
    with pytest.raises(ValueError, match="unknown noise model"):
        noise_from_config({"class": "Laplace"})


def test_problem_validates_measurement():
    op = MatrixOperator(torch.ones(2, 3, dtype=F64), dtype=F64)
    with pytest.raises(ValueError, match=r"measurement has shape \(3,\)"):
        InverseProblem(op, torch.zeros(3), Gaussian(0.1))
    with pytest.raises(ValueError, match="NaN or Inf"):
        InverseProblem(op, torch.tensor([0.0, float("nan")]), Gaussian(0.1))
    with pytest.raises(TypeError, match="NoiseModel"):
        InverseProblem(op, torch.zeros(2), 0.1)


def test_log_likelihood_is_the_noise_density():
    op = Inpainting(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    truth = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64)
    prob = InverseProblem.simulate(op, Gaussian(0.2), truth, seed=0)
    x = torch.zeros(1, 2, 2, dtype=F64)
    want = -0.5 * float((prob.y**2).sum()) / 0.04 - 2 * math.log(2 * math.pi * 0.04)
    assert abs(float(prob.log_likelihood(x)[0]) - want) < 1e-9


def test_bad_operators():
    with pytest.raises(ValueError, match="2-D matrix"):
        MatrixOperator(torch.ones(3))
    with pytest.raises(ValueError, match="NaN or Inf"):
        MatrixOperator(torch.tensor([[float("inf")]]))
    with pytest.raises(ValueError, match="only 0"):
        Inpainting(torch.tensor([0.5, 1.0]))
    with pytest.raises(NotImplementedError, match="coarse"):
        MatrixOperator(torch.ones(1, 1)).coarse()


def test_matrix_operator_svd_is_kept_until_the_matrix_changes():
    A = torch.randn(3, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    op = MatrixOperator(A.clone(), dtype=F64)
    first = op.svd()
    assert op.svd() is first  # kept: MCG's projection asks for it every step
    y = op(torch.ones(2, 5, dtype=F64))
    op.A.mul_(2.0)  # an in-place change: the next call decomposes the new matrix
    U, s, Vh = op.svd()
    torch.testing.assert_close(U @ torch.diag(s) @ Vh, 2.0 * A)
    torch.testing.assert_close(op.pseudo_inverse(y), torch.linalg.pinv(2.0 * A).matmul(y.T).T)
    op.prepare_pseudo_inverse()
    assert op.svd() is not first
