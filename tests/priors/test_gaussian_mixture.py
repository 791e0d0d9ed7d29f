"""Exact denoisers, exact posteriors and evidence of the analytic priors."""

import math

import pytest
import torch

from priors import GaussianMixture, GaussianMixturePrior, GaussianPrior

F64 = torch.float64


def _tweedie(prior, x, sigma):
    """Denoiser from autograd of the exact noised log-density: x + sigma^2 grad log p_sigma(x)."""
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(prior.log_prob(x, sigma).sum(), x)
    return (x + sigma.reshape(-1, *([1] * (x.ndim - 1))) ** 2 * g).detach()


def _random_spd(d, g, k=None):
    shape = (d, d) if k is None else (k, d, d)
    M = torch.randn(*shape, generator=g, dtype=F64)
    return M @ M.transpose(-1, -2) / d + 0.3 * torch.eye(d, dtype=F64)


@pytest.mark.parametrize("cov", ["identity", "shared", "per-component"])
def test_denoiser_matches_tweedie(cov):
    g = torch.Generator().manual_seed(0)
    K, d = 4, 3
    covs = {"identity": None, "shared": _random_spd(d, g), "per-component": _random_spd(d, g, K)}[cov]
    prior = GaussianMixturePrior(3 * torch.randn(K, d, generator=g, dtype=F64), torch.rand(K, generator=g, dtype=F64),
                                 covs)
    for s in [0.01, 0.5, 3.0, 50.0]:
        x = 4 * torch.randn(6, d, generator=g, dtype=F64)
        sigma = torch.full((6,), s, dtype=F64)
        torch.testing.assert_close(prior.denoise(x, sigma), _tweedie(prior, x, sigma), rtol=1e-8, atol=1e-8)


def test_gaussian_prior_closed_form_on_images():
    g = torch.Generator().manual_seed(1)
    C = _random_spd(4, g)
    m = torch.randn(1, 2, 2, generator=g, dtype=F64)
    prior = GaussianPrior(m, C)
    x = torch.randn(5, 1, 2, 2, generator=g, dtype=F64)
    s = torch.rand(5, generator=g, dtype=F64) + 0.1
    want = torch.stack([m.reshape(4) + C @ torch.linalg.solve(C + si**2 * torch.eye(4, dtype=F64),
                                                              xi.reshape(4) - m.reshape(4))
                        for xi, si in zip(x, s, strict=False)])
    torch.testing.assert_close(prior.denoise(x, s).reshape(5, 4), want)
    assert prior.shape == (1, 2, 2)


def test_posterior_satisfies_bayes_rule():
    """log p(x|y) = log p(x) + log p(y|x) - log p(y) at random points (exact identity)."""
    g = torch.Generator().manual_seed(2)
    K, d, dy, sy = 5, 4, 2, 0.7
    prior = GaussianMixturePrior(4 * torch.randn(K, d, generator=g, dtype=F64), torch.rand(K, generator=g, dtype=F64),
                                 _random_spd(d, g, K))
    A = torch.randn(dy, d, generator=g, dtype=F64)
    y = torch.randn(dy, generator=g, dtype=F64)
    post = prior.posterior(A, y, sy)
    logz = prior.log_evidence(A, y, sy)
    x = 3 * torch.randn(20, d, generator=g, dtype=F64)
    loglik = -0.5 * ((y - x @ A.T) ** 2).sum(1) / sy**2 - 0.5 * dy * math.log(2 * math.pi * sy**2)
    torch.testing.assert_close(post.log_prob(x), prior.log_prob(x, 0.0) + loglik - logz)


def test_posterior_against_brute_force_importance_sampling():
    """d = 2: exact posterior mean, covariance, mode weights and evidence vs 2e6 weighted prior draws."""
    g = torch.Generator().manual_seed(3)
    means = torch.tensor([[-4.0, 0.0], [4.0, 1.0], [0.0, 5.0]], dtype=F64)
    prior = GaussianMixturePrior(means, torch.tensor([0.2, 0.5, 0.3], dtype=F64))
    A = torch.tensor([[1.0, 0.5]], dtype=F64)
    y, sy = torch.tensor([1.0], dtype=F64), 1.5
    post = prior.posterior(A, y, sy)
    n = 2_000_000
    x = prior.sample(n, g)
    logw = -0.5 * ((y - x @ A.T) ** 2).sum(1) / sy**2 - 0.5 * math.log(2 * math.pi * sy**2)
    w = torch.softmax(logw, 0)
    mean_is = w @ x
    cov_is = (w[:, None] * (x - mean_is)).T @ (x - mean_is)
    torch.testing.assert_close(post.mean(), mean_is, atol=0.02, rtol=0)
    torch.testing.assert_close(post.covariance(), cov_is, atol=0.05, rtol=0)
    logz_is = float(torch.logsumexp(logw, 0) - math.log(n))
    assert abs(prior.log_evidence(A, y, sy) - logz_is) < 0.005
    # each prior draw is assigned to its most probable prior component (the modes barely overlap)
    mix = GaussianMixture(prior.weights, prior.means, torch.eye(2, dtype=F64))
    k = mix.responsibilities(x).argmax(1)
    mode_is = torch.stack([w[k == j].sum() for j in range(3)])
    mode_exact = torch.stack([post.responsibilities(x)[:, j] @ w for j in range(3)])
    torch.testing.assert_close(mode_exact, mode_is, atol=0.03, rtol=0)


def test_posterior_sampling_matches_its_moments():
    g = torch.Generator().manual_seed(4)
    prior = GaussianPrior(torch.ones(3, dtype=F64), _random_spd(3, g))
    post = prior.posterior(torch.randn(2, 3, generator=g, dtype=F64), torch.zeros(2, dtype=F64), 0.3)
    x = post.sample(200_000, g)
    torch.testing.assert_close(x.mean(0), post.mean(), atol=0.01, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), post.covariance(), atol=0.01, rtol=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"means": torch.zeros(3, 2), "weights": torch.ones(2)}, "weights must have shape"),
    ({"means": torch.zeros(2, 2), "weights": torch.tensor([1.0, -1.0])}, "non-negative"),
    ({"means": torch.zeros(2, 2), "weights": torch.ones(2), "covariances": -torch.eye(2)}, "positive definite"),
    ({"means": torch.zeros(2, 2), "weights": torch.ones(2), "covariances": torch.eye(3)},
     "covariances must have shape"),
    ({"means": torch.tensor([[float("nan"), 0.0]]), "weights": torch.ones(1)}, "finite"),
])
def test_bad_mixture_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixturePrior(**kwargs)


def test_denoise_rejects_wrong_shapes():
    prior = GaussianPrior(torch.zeros(3))
    with pytest.raises(ValueError, match=r"shape \(B, 3\)"):
        prior.denoise(torch.zeros(2, 4), torch.ones(2))
    with pytest.raises(ValueError, match="sigma must"):
        prior.denoise(torch.zeros(2, 3), torch.ones(3))
    with pytest.raises(ValueError, match="rows"):
        prior.posterior(torch.ones(2, 3), torch.ones(3), 0.1)
    with pytest.raises(ValueError, match="sigma_y"):
        prior.posterior(torch.ones(2, 3), torch.ones(2), float("nan"))


def test_isotropic_std_equals_dense_covariance_without_a_dense_matrix():
    """GaussianPrior(std=s) uses the isotropic path (no d x d matrix) and equals the dense s^2 I prior."""
    import torch

    from priors import GaussianPrior

    p, q = GaussianPrior(torch.zeros(3), std=2.0), GaussianPrior(torch.zeros(3), 4.0 * torch.eye(3))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    s = torch.full((5,), 1.5, dtype=torch.float64)
    assert torch.allclose(p.denoise(x, s), q.denoise(x, s), atol=1e-12)
    assert torch.allclose(p.log_prob(x, s), q.log_prob(x, s), atol=1e-10)
    A, y = torch.randn(2, 3, generator=g, dtype=torch.float64), torch.randn(2, generator=g, dtype=torch.float64)
    assert torch.allclose(p.posterior(A, y, 0.3).means, q.posterior(A, y, 0.3).means, atol=1e-12)
    assert abs(float(p.sample(20000, g).std()) - 2.0) < 0.03
    big = GaussianPrior(torch.zeros(2, 300, 40), std=0.5, dtype=torch.float32)  # d = 24000: dense would be 2.3 GB
    assert not hasattr(big, "covariances")
    assert big.denoise(torch.zeros(1, 2, 300, 40), torch.ones(1)).shape == (1, 2, 300, 40)


@pytest.mark.parametrize("d", [8, 80, 800])
def test_default_sigma_max_makes_the_start_distribution_close_to_the_noised_prior(d):
    """Samplers start from N(0, sigma_max^2 I): its log-density ratio to p_sigma_max must barely vary.

    A coordinate-wise rule gave sigma_max = 198 for the d = 80 benchmark mixture (means 143-172 from
    the centre): log-ratio spread 0.18 and visibly biased mode weights. The Euclidean rule keeps it ~0.1.
    """
    from inverse.problems import gmm_case

    prior = gmm_case(d, 1, seed=0).prior
    s = prior.sigma_max
    g = torch.Generator().manual_seed(0)
    x = s * torch.randn(4000, d, generator=g, dtype=torch.float64)
    log_p = prior.log_prob(x, torch.full((4000,), s, dtype=torch.float64))
    log_q = -0.5 * (x**2).sum(1) / s**2 - d * math.log(s) - 0.5 * d * math.log(2 * math.pi)
    assert float((log_p - log_q).std()) < 0.12
