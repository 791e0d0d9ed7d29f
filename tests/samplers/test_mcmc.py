"""pCN, delayed acceptance / MLDA, the hybrid two-level estimator, checkpoints and surrogates.

Exactness is checked on linear-Gaussian problems (:func:`inverse.problems.linear_gaussian_problem`) whose
posterior is known in closed form:
``C_post = (C_0^{-1} + A^T A / s^2)^{-1}``, ``m_post = C_post (C_0^{-1} m_0 + A^T y / s^2)``; Monte Carlo
error from the bulk ESS (ArviZ).
"""

import logging

import numpy as np
import pytest
import torch

from forward_models import Gaussian, InverseProblem, MatrixOperator
from inverse.problems import linear_gaussian_problem
from priors.function_space import DenseGaussian, MaternField, StandardGaussian
from samplers.checkpoint import CheckpointError
from samplers.mcmc import MLDA, PCN, DelayedAcceptance, Potential, hybrid_two_level, pcn_proposal, sample_chains

torch.set_num_threads(1)
D, DY, SIGMA = 4, 3, 0.5


def _check_exact(result, m, P, z_max=4.5, cov_tol=0.2):
    x = result.draws.reshape(-1, D)
    ess = result.ess()
    mcse = P.diagonal().sqrt().numpy() / np.sqrt(ess)
    z = np.abs((x.mean(0) - m).numpy()) / mcse
    assert z.max() < z_max, f"posterior mean off by {z.max():.1f} Monte Carlo standard errors"
    rel = float(torch.linalg.matrix_norm(torch.cov(x.T) - P) / torch.linalg.matrix_norm(P))
    assert rel < cov_tol, f"posterior covariance off by {rel:.3f} (relative Frobenius)"
    assert np.nanmax(result.rhat()) < 1.05


@pytest.mark.parametrize("nonzero_mean", [False, True])
def test_pcn_matches_exact_posterior(nonzero_mean):
    problem, _, mu, m, P = linear_gaussian_problem(1, nonzero_mean=nonzero_mean)
    result = sample_chains(PCN(Potential(problem), mu, 0.5), mu.sample(4, torch.Generator().manual_seed(0)), 3000,
                        seed=0, warmup=300, target_acceptance=0.3)
    _check_exact(result, m, P)


def test_zero_mean_pcn_is_detectably_wrong():
    problem, _, mu, m, P = linear_gaussian_problem(1)
    result = sample_chains(PCN(Potential(problem), mu, 0.5, centre_on_mean=False),
                           mu.sample(4, torch.Generator().manual_seed(0)),
                        3000, seed=0, warmup=300, target_acceptance=0.3)
    x = result.draws.reshape(-1, D)
    mcse = P.diagonal().sqrt().numpy() / np.sqrt(result.ess())
    assert (np.abs((x.mean(0) - m).numpy()) / mcse).max() > 15


@pytest.mark.parametrize("nonzero_mean", [False, True])
def test_delayed_acceptance_exact_with_biased_coarse_model(nonzero_mean):
    problem, biased, mu, m, P = linear_gaussian_problem(1, nonzero_mean=nonzero_mean)
    kernel = MLDA([Potential(biased, name="coarse"), Potential(problem, name="fine")], mu, subchain_lengths=4,
                  beta=0.5, randomize=True)
    result = sample_chains(kernel, mu.sample(4, torch.Generator().manual_seed(0)), 2000, seed=1, warmup=200,
                        target_acceptance=0.3)
    _check_exact(result, m, P)
    acc = result.acceptance()
    assert 0.05 < acc["fine"] < 0.95 and 0.05 < acc["coarse"] < 0.95
    # a judged fine proposal costs exactly one fine solve (plus the initial one per chain)
    assert result.evaluations[1] == result.proposals[1] + 4


def test_three_level_mlda_exact():
    problem, biased, mu, m, P = linear_gaussian_problem(1)
    coarser = InverseProblem(MatrixOperator(0.9 * problem.forward_model.A - 0.1), problem.y, problem.noise)
    kernel = MLDA([Potential(coarser, name="l0"), Potential(biased, name="l1"), Potential(problem, name="fine")], mu,
                  subchain_lengths=[3, 2], beta=0.5)
    result = sample_chains(kernel, mu.sample(4, torch.Generator().manual_seed(0)), 1500, seed=2, warmup=200,
                        target_acceptance=0.3)
    _check_exact(result, m, P, cov_tol=0.25)


def test_delayed_acceptance_with_exact_coarse_accepts_everything_at_stage_two():
    problem, _, mu, _, _ = linear_gaussian_problem(1)
    kernel = DelayedAcceptance(Potential(problem, name="c"), Potential(problem, name="f"), mu, beta=0.5,
                               subchain_length=3)
    result = sample_chains(kernel, mu.sample(2, torch.Generator().manual_seed(0)), 50, seed=0)
    assert result.accepts[1] == result.proposals[1] > 0


def test_resume_is_bit_identical(tmp_path):
    problem, biased, mu, _, _ = linear_gaussian_problem(1)
    make = lambda: MLDA([Potential(biased, name="coarse"), Potential(problem, name="fine")], mu, 3, 0.5, randomize=True)  # noqa: E731
    u0 = mu.sample(3, torch.Generator().manual_seed(0))
    kw = dict(seed=7, warmup=40, target_acceptance=0.3, adapt_every=10)
    full = sample_chains(make(), u0, 100, **kw)
    ck = tmp_path / "chain.ckpt"

    def interrupt(state):  # stop the run after 65 of its 140 iterations (warm-up included)
        if state.step == 65:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sample_chains(make(), u0, 100, checkpoint=ck, checkpoint_every=15, callback=interrupt, **kw)
    assert ck.is_file()
    resumed = sample_chains(make(), u0, 100, checkpoint=ck, checkpoint_every=15, **kw)
    assert resumed.posterior.diagnostics["resumed_from_step"] == 65
    assert torch.equal(resumed.draws, full.draws) and torch.equal(resumed.potentials, full.potentials)
    assert resumed.evaluations == full.evaluations and resumed.accepts == full.accepts and resumed.beta == full.beta
    with pytest.raises(CheckpointError, match="different run"):
        sample_chains(make(), u0, 200, checkpoint=ck, **kw)


def test_hybrid_estimator_within_reported_error():
    problem, _, mu, m, _ = linear_gaussian_problem(1, nonzero_mean=False)
    surrogate = InverseProblem(MatrixOperator(1.05 * problem.forward_model.A + 0.05), problem.y, problem.noise)
    est = hybrid_two_level(Potential(surrogate), Potential(problem), mu, mu.sample(4, torch.Generator().manual_seed(0)),
                           base_iterations=2000, correction_steps=250, thin=5, beta=0.5, warmup=200, seed=3)
    z = ((est.mean - m).abs() / est.variance.sqrt()).max()
    assert z < 4.5, f"hybrid estimate off by {z:.1f} reported standard errors"
    assert est.fine_solves == 4 * 251 and 0 < est.correction_acceptance <= 1
    # the surrogate alone is biased: the correction matters
    zb = ((est.base_mean - m).abs() / est.base_variance.sqrt()).max()
    assert zb > z


def test_matern_field_whitening_and_covariance():
    prior = MaternField(8, num_modes=12, alpha=2.0, tau=3.0, sigma=4.0, mean=1.0)
    g = torch.Generator().manual_seed(0)
    xi = torch.randn(5, 12, generator=g, dtype=torch.float64)
    assert torch.allclose(prior.whiten(prior.field(xi)), xi, atol=1e-10)
    x = prior.sample(20000, g)
    C = prior.covariance()
    assert torch.allclose(x.mean(0), prior.mean, atol=5 * float(C.diagonal().max().sqrt()) / 20000**0.5)
    assert float(torch.linalg.matrix_norm(torch.cov(x.T) - C) / torch.linalg.matrix_norm(C)) < 0.05
    assert torch.allclose(prior.pointwise_std().reshape(-1) ** 2, C.diagonal())


def test_bad_arguments():
    problem, _, mu, _, _ = linear_gaussian_problem(1, nonzero_mean=False)
    with pytest.raises(ValueError, match="beta"):
        PCN(Potential(problem), mu, beta=1.5)
    with pytest.raises(ValueError, match="at least 2 levels"):
        MLDA([Potential(problem)], mu)
    with pytest.raises(ValueError, match="subchain_lengths"):
        MLDA([Potential(problem), Potential(problem)], mu, subchain_lengths=0)
    with pytest.raises(ValueError, match="positive definite"):
        DenseGaussian(torch.zeros(2), -torch.eye(2))
    with pytest.raises(ValueError, match="num_modes"):
        MaternField(4, num_modes=17)
    with pytest.raises(ValueError, match="beta"):
        pcn_proposal(StandardGaussian(2), torch.zeros(1, 2, dtype=torch.float64), 0.0, torch.Generator())
    with pytest.raises(ValueError, match="num_iterations"):
        sample_chains(PCN(Potential(problem), mu), torch.zeros(2, D), 0)


def test_surrogate_save_load_round_trip(tmp_path):
    from forward_models.darcy import DarcyFlow
    from forward_models.surrogate import load_surrogate, save_surrogate, train_surrogate

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    op = DarcyFlow(8, coefficient="exp", sensors=2)
    prior = MaternField(8, num_modes=6, sigma=4.0)
    x = prior.field(torch.randn(64, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    sur, card = train_surrogate(x, op(x), projection=prior.basis.float(), steps=30, hidden=(16,), log_output=True)
    assert card["val_examples"] > 0 and card["val_relative_error_median"] < 1.0
    save_surrogate(sur, tmp_path / "s", card)
    with pytest.raises(FileExistsError):
        save_surrogate(sur, tmp_path / "s", card)
    back = load_surrogate(tmp_path / "s")
    assert torch.equal(back(x[:5]), sur(x[:5])) and back.card["steps"] == 30
    problem = InverseProblem(back, op(x[:1])[0].detach(), Gaussian(0.01))
    assert torch.isfinite(Potential(problem, lambda u: prior.field(u))(torch.zeros(2, 6, dtype=torch.float64))).all()


def test_latent_space_chain_runs_through_the_probability_flow_map():
    from priors import GaussianPrior
    from samplers.mcmc import latent_measure, latent_potential

    prior = GaussianPrior(torch.tensor([1.0, -1.0], dtype=torch.float64), std=1.0)
    problem = InverseProblem.simulate(MatrixOperator(torch.eye(2, dtype=torch.float64)), Gaussian(0.5),
                                      torch.tensor([1.5, -0.5], dtype=torch.float64), seed=0)
    fine, coarse = latent_potential(problem, prior, 8, name="fine"), latent_potential(problem, prior, 3, name="coarse")
    kernel = MLDA([coarse, fine], latent_measure(prior), subchain_lengths=3, beta=0.5)
    result = sample_chains(kernel, torch.zeros(2, 2, dtype=torch.float64), 30, seed=0)
    assert fine.transform.nfe == (2 * 8 - 1) * result.evaluations[1]
    assert coarse.transform.nfe == (2 * 3 - 1) * result.evaluations[0]


@pytest.mark.slow
def test_latent_pcn_matches_gaussian_posterior():
    from priors import GaussianPrior
    from samplers.mcmc import latent_measure, latent_potential

    prior = GaussianPrior(torch.tensor([1.0, -1.0], dtype=torch.float64), std=1.0)
    problem = InverseProblem.simulate(MatrixOperator(torch.eye(2, dtype=torch.float64)), Gaussian(0.5),
                                      torch.tensor([1.5, -0.5], dtype=torch.float64), seed=0)
    pot = latent_potential(problem, prior, 24)
    result = sample_chains(PCN(pot, latent_measure(prior), 0.5), torch.zeros(4, 2, dtype=torch.float64), 1500, seed=0,
                        warmup=200, target_acceptance=0.3)
    x = pot.transform(result.draws.reshape(-1, 2))
    exact = (prior.mean / 1.0 + problem.y / 0.25) / (1.0 + 1 / 0.25)
    assert torch.allclose(x.mean(0), exact, atol=0.08)


def _off_reference(m, P):
    """A deliberately poor reference: shifted mean and a mis-scaled, rotated covariance."""
    R = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(5), dtype=torch.float64))[0]
    return DenseGaussian(m + 0.5 * P.diagonal().sqrt(), 1.5 * R @ P @ R.T + 0.2 * P)


@pytest.mark.parametrize("good", [True, False])
def test_generalised_pcn_exact_for_any_reference(good):
    """Generalised pCN targets the posterior whatever the reference (non-zero prior mean)."""
    from samplers.mcmc import gaussian_reference

    problem, _, mu, m, P = linear_gaussian_problem(1)
    if good:  # fitted to a pilot chain on the deliberately biased model: the intended use
        pilot = sample_chains(PCN(Potential(linear_gaussian_problem(1)[1]), mu, 0.5),
                              mu.sample(4, torch.Generator().manual_seed(3)),
                           500, seed=3, warmup=100, target_acceptance=0.3)
        ref = gaussian_reference(pilot.draws)  # inflate=2 by default: the biased pilot is too narrow
    else:
        ref = _off_reference(m, P)
    result = sample_chains(PCN(Potential(problem), mu, 0.9, reference=ref),
                           mu.sample(4, torch.Generator().manual_seed(0)),
                        2000 if good else 5000, seed=0, warmup=200, target_acceptance=0.4)
    _check_exact(result, m, P)


def test_delayed_acceptance_with_generalised_pcn_exact():
    """The intended use: a reference fitted on a pilot chain of the (biased) coarse level only."""
    from samplers.mcmc import gaussian_reference

    problem, biased, mu, m, P = linear_gaussian_problem(1)
    pilot = sample_chains(PCN(Potential(biased), mu, 0.5), mu.sample(4, torch.Generator().manual_seed(3)), 500, seed=3,
                       warmup=100, target_acceptance=0.3)
    kernel = MLDA([Potential(biased, name="coarse"), Potential(problem, name="fine")], mu, subchain_lengths=4,
                  beta=0.8, randomize=True, reference=gaussian_reference(pilot.draws))
    # the coarse model is strongly biased (fine acceptance ~0.3), so this chain needs more steps than pCN's test
    result = sample_chains(kernel, mu.sample(4, torch.Generator().manual_seed(0)), 4000, seed=1, warmup=200,
                        target_acceptance=0.4)
    _check_exact(result, m, P)


def test_generalised_pcn_mixes_faster_on_a_concentrated_posterior():
    """With informative data, pCN's ESS per step collapses; a fitted reference keeps it high."""
    from samplers.mcmc import gaussian_reference

    g = torch.Generator().manual_seed(4)
    A = torch.randn(8, D, generator=g, dtype=torch.float64)
    mu = StandardGaussian(D)
    problem = InverseProblem.simulate(MatrixOperator(A), Gaussian(0.02), mu.sample(1, g)[0], seed=4)
    u0 = mu.sample(4, torch.Generator().manual_seed(0))
    plain = sample_chains(PCN(Potential(problem), mu, 0.1), u0, 1000, seed=0, warmup=300, target_acceptance=0.25)
    ref = gaussian_reference(plain.draws)
    gen = sample_chains(PCN(Potential(problem), mu, 0.9, reference=ref), plain.draws[:, -1], 1000, seed=0, warmup=100,
                     target_acceptance=0.5)
    assert gen.ess().min() > 10 * plain.ess().min()


def test_reference_validation_and_log_density():
    from samplers.mcmc import gaussian_reference

    mu = DenseGaussian(torch.tensor([1.0, 2.0]), torch.tensor([[2.0, 0.3], [0.3, 1.0]]))
    u = torch.randn(5, 2, dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(mu.mean, mu.covariance()).log_prob(u)
    lp = mu.log_density(u)
    assert torch.allclose(lp - lp[0], exact - exact[0])
    assert torch.allclose(StandardGaussian(2).log_density(u), -0.5 * (u * u).sum(1))
    problem, _, mu4, _, _ = linear_gaussian_problem(1, nonzero_mean=False)
    with pytest.raises(ValueError, match="dimension 2, the prior 4"):
        PCN(Potential(problem), mu4, 0.5, reference=mu)
    with pytest.raises(TypeError, match="GaussianMeasure"):
        MLDA([Potential(problem), Potential(problem)], mu4, reference="nope")
    with pytest.raises(ValueError, match="more draws than dimensions"):
        gaussian_reference(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="NaN"):
        gaussian_reference(torch.full((10, 2), float("nan")))
    with pytest.raises(ValueError, match="singular"):
        MaternField(8, 4).log_density(torch.zeros(1, 64))


def test_pilot_reference_prepares_an_exact_fast_chain():
    """pilot_reference on a biased cheap level, then generalised-pCN delayed acceptance from its final states."""
    from samplers.mcmc import pilot_reference

    problem, biased, mu, m, P = linear_gaussian_problem(1)
    ref, u, res = pilot_reference(Potential(biased), mu, mu.sample(4, torch.Generator().manual_seed(0)), 400,
                                  warmup=100, seed=2)
    assert u.shape == (4, D) and res.draws.shape == (4, 400, D)
    with pytest.raises(ValueError, match="rounds"):
        pilot_reference(Potential(biased), mu, u, 10, rounds=0)
    result = sample_chains(PCN(Potential(problem), mu, 0.8, reference=ref), u, 2000, seed=1, warmup=100,
                        target_acceptance=0.4, adapt_every=5)
    _check_exact(result, m, P)


def test_registered_pcn_matches_exact_posterior_and_resumes_bit_identically(tmp_path):
    from priors import GaussianPrior
    from samplers import get_sampler

    g = torch.Generator().manual_seed(0)
    A = torch.randn(DY, D, generator=g, dtype=torch.float64)
    problem = InverseProblem.simulate(MatrixOperator(A), Gaussian(SIGMA), torch.ones(D, dtype=torch.float64), seed=0)
    prior = GaussianPrior(torch.zeros(D, dtype=torch.float64), std=1.0)
    P = torch.linalg.inv(torch.eye(D, dtype=torch.float64) + A.T @ A / SIGMA**2)
    m = P @ A.T @ problem.y / SIGMA**2
    sampler = get_sampler("pcn", num_steps=2000, warmup=200, beta=0.5, target_acceptance=0.3)
    post = sampler.sample(problem, prior, 800, seed=1)
    d = post.diagnostics
    assert post.samples.shape == (800, D) and d["chains"] == 4 and d["draws"] == 200
    assert 0.1 < d["acceptance"]["fine"] < 0.6 and d["ess_min"] > 50 and d["rhat_max"] < 1.05
    mcse = P.diagonal().sqrt() / d["ess_min"] ** 0.5
    assert ((post.mean() - m).abs() / mcse).max() < 4.5
    assert d["forward_evals"] == d["evaluations"][0] == 4 * 2201
    short = get_sampler("pcn", num_steps=40, warmup=10)
    full = short.sample(problem, prior, 8, seed=2)
    ck = tmp_path / "pcn.ckpt"

    def interrupt(state):
        if state.step == 23:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        short.sample(problem, prior, 8, seed=2, checkpoint=ck, checkpoint_every=7, callback=interrupt)
    resumed = short.sample(problem, prior, 8, seed=2, checkpoint=ck, resume=True)
    assert torch.equal(resumed.samples, full.samples) and resumed.diagnostics["beta"] == full.diagnostics["beta"]
    assert resumed.diagnostics["evaluations"] == full.diagnostics["evaluations"]


@pytest.mark.parametrize("name, levels", [("da", 2), ("mlda", 3)])
def test_multilevel_samplers_on_darcy_use_the_coarse_grids(name, levels):
    from forward_models.darcy import DarcyFlow
    from priors import GaussianPrior
    from samplers import get_sampler

    fm = DarcyFlow(8, coefficient="exp", sensors=3)
    problem = InverseProblem.simulate(fm, Gaussian(0.01), fm.example_input(1, seed=0)[0], seed=0)
    prior = GaussianPrior(torch.zeros(1, 8, 8, dtype=torch.float64), std=0.3)
    sampler = get_sampler(name, num_steps=6, warmup=2, subchain_length=2)
    a, b = sampler.sample(problem, prior, 8, seed=0), sampler.sample(problem, prior, 8, seed=0)
    assert a.samples.shape == (8, 1, 8, 8) and torch.equal(a.samples, b.samples)
    d = a.diagnostics
    assert d["level_names"][-1] == "fine" and len(d["evaluations"]) == levels
    assert d["evaluations"][0] > d["evaluations"][-1] >= 4 and d["forward_evals"] == sum(d["evaluations"])


def test_registered_pcn_runs_in_the_latent_space_of_a_non_gaussian_prior():
    from priors import GaussianMixturePrior
    from samplers import get_sampler

    prior = GaussianMixturePrior(torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64),
                                 torch.tensor([0.5, 0.5], dtype=torch.float64), isotropic_variance=0.25)
    problem = InverseProblem.simulate(MatrixOperator(torch.eye(2, dtype=torch.float64)), Gaussian(0.5),
                                      torch.tensor([1.0, 1.0], dtype=torch.float64), seed=0)
    post = get_sampler("pcn", num_steps=10, warmup=2, ode_steps=4).sample(problem, prior, 4, seed=0)
    d = post.diagnostics
    assert post.samples.shape == (4, 2) and torch.isfinite(post.samples).all()
    assert d["nfe"] == (2 * 4 - 1) * d["forward_evals"] and d["forward_evals"] == 4 * 13
