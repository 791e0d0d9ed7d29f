"""Matrix-free singular basis of large linear operators (``forward_models.linalg.gram_eigh``), the route that
lets the exact-linear SMC samplers run on multi-coil MRI, checked against the dense decomposition."""

import pytest
import torch

import forward_models.linalg as linalg
import samplers.smc.linear_gaussian as smc
from forward_models import Gaussian, InverseProblem
from forward_models.linalg import gram_eigh
from forward_models.mri import MultiCoilMRI, RealImageMRI
from priors import GaussianPrior
from samplers.smc import LinearGaussian

F64 = torch.float64


@pytest.fixture(autouse=True)
def _without_structured_bases(monkeypatch):
    """These tests check the dense and matrix-free routes: the per-row basis of column-masked MRI, which
    ``LinearGaussian`` takes first, is switched off (it is checked in ``test_structured_basis.py``)."""
    monkeypatch.setattr(smc, "_has_structure", lambda fm: False)


class _ShiftedPrior(GaussianPrior):
    """A prior whose model space is an affine image of the physical one (as normalised priors are)."""

    def to_physical(self, x):
        return 0.5 + 0.25 * x


def _problem(seed=0, size=12, coils=3):
    op = RealImageMRI(MultiCoilMRI.cartesian(size, acceleration=3, seed=seed, num_coils=coils, coil_seed=seed))
    g = torch.Generator().manual_seed(seed)
    truth = torch.rand(1, 1, size, size, generator=g, dtype=F64)
    y = op(truth)[0] + 0.05 * torch.randn(op.output_shape, generator=g, dtype=F64)
    return InverseProblem(op, y, Gaussian(0.05))


@pytest.mark.parametrize("prior_cls", [GaussianPrior, _ShiftedPrior])
def test_matrix_free_route_reproduces_the_dense_likelihood(prior_cls, monkeypatch):
    problem = _problem()
    size = problem.forward_model.input_shape
    prior = prior_cls(torch.zeros(size, dtype=F64))
    dense = LinearGaussian.from_problem(problem, prior)
    monkeypatch.setattr(smc, "MAX_DENSE_ENTRIES", 0)  # every operator now takes the matrix-free route
    free = LinearGaussian.from_problem(problem, prior)
    assert dense.U is not None and free.U is None
    assert free.rank == dense.rank and free.rank < problem.y.numel()
    torch.testing.assert_close(free.s, dense.s, rtol=1e-8, atol=0)
    # the basis is defined up to the signs (and rotations within repeated singular values): compare the
    # projector onto the observed subspace and the likelihood, which do not depend on that choice
    torch.testing.assert_close(free.Vh.T @ free.Vh, dense.Vh.T @ dense.Vh, rtol=0, atol=1e-8)
    assert free.log_perp == pytest.approx(dense.log_perp, rel=1e-9)
    x = torch.randn(4, *size, generator=torch.Generator().manual_seed(1), dtype=F64)
    var = torch.full((free.rank,), 0.05**2, dtype=F64)
    exact = problem.log_likelihood(prior.to_physical(x))
    torch.testing.assert_close(free.log_twist(free.project(x), var), exact, rtol=1e-9, atol=1e-6)
    torch.testing.assert_close(dense.log_twist(dense.project(x), var), exact, rtol=1e-9, atol=1e-6)


def test_matrix_free_route_leaves_the_problems_operator_as_it_was(monkeypatch):
    problem = _problem(seed=2)
    fm = problem.forward_model.float()
    before = {k: (v.dtype, v.clone()) for k, v in fm.state_dict().items()}
    monkeypatch.setattr(smc, "MAX_DENSE_ENTRIES", 0)
    LinearGaussian.from_problem(problem, GaussianPrior(torch.zeros(fm.input_shape, dtype=torch.float32)))
    for k, v in fm.state_dict().items():
        assert v.dtype == before[k][0] and torch.equal(v, before[k][1])


def test_gram_eigh_recovers_a_known_spectrum_and_drops_the_unobserved():
    g = torch.Generator().manual_seed(3)
    V, _ = torch.linalg.qr(torch.randn(30, 5, generator=g, dtype=F64))
    spectrum = torch.tensor([4.0, 2.0, 1.0, 0.5, 1e-9], dtype=F64)  # the last is below the 1e-5 cut-off
    gram = V @ torch.diag(spectrum**2) @ V.T
    s, Vh = gram_eigh(lambda x: x.reshape(len(x), -1) @ gram, (30,), chunk=7)
    torch.testing.assert_close(s, spectrum[:4], rtol=1e-10, atol=0)
    torch.testing.assert_close(Vh.T @ Vh, V[:, :4] @ V[:, :4].T, rtol=0, atol=1e-10)
    torch.testing.assert_close(Vh @ Vh.T, torch.eye(4, dtype=F64), rtol=0, atol=1e-10)


def _count_calls(monkeypatch, name: str) -> list:
    """An empty decomposition cache, and a list that grows by one at each call of ``smc.<name>``."""
    monkeypatch.setattr(linalg, "_CACHE", type(linalg._CACHE)())
    calls, real = [], getattr(smc, name)
    monkeypatch.setattr(smc, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_decomposition_is_reused_for_the_same_operator_and_redone_when_it_changes(monkeypatch):
    monkeypatch.setattr(smc, "MAX_DENSE_ENTRIES", 0)
    calls = _count_calls(monkeypatch, "gram_eigh")
    problem = _problem(seed=4)
    prior = GaussianPrior(torch.zeros(problem.forward_model.input_shape, dtype=F64))
    first = LinearGaussian.from_problem(problem, prior)
    other_y = InverseProblem(problem.forward_model, problem.y + 0.1, problem.noise)  # same operator, new data
    second = LinearGaussian.from_problem(other_y, prior)
    assert len(calls) == 1
    assert torch.equal(first.Vh, second.Vh) and not torch.allclose(first.y_bar, second.y_bar)
    # a changed coil map (same shapes, same config) is a different operator
    maps = problem.forward_model.operator.coil_maps
    with torch.no_grad():
        maps.mul_(1.5)
    third = LinearGaussian.from_problem(problem, prior)
    assert len(calls) == 2
    torch.testing.assert_close(third.s, 1.5 * first.s, rtol=1e-8, atol=0)


def test_tds_draws_the_same_particles_through_either_route(monkeypatch):
    """TDS draws its noise in pixel space, so the route (how the basis is computed) changes nothing but
    rounding: from the same seed its particles and evidence agree with the dense route's."""
    from samplers import get_sampler

    problem = _problem(seed=5, size=8, coils=2)
    prior = GaussianPrior(0.5 * torch.ones(problem.forward_model.input_shape, dtype=F64), std=0.3)
    dense = get_sampler("tds", num_steps=8).sample(problem, prior, 6, seed=3)
    monkeypatch.setattr(smc, "MAX_DENSE_ENTRIES", 0)
    free = get_sampler("tds", num_steps=8).sample(problem, prior, 6, seed=3)
    torch.testing.assert_close(free.samples, dense.samples, rtol=1e-6, atol=1e-6)
    assert free.diagnostics["log_evidence"] == pytest.approx(dense.diagnostics["log_evidence"], rel=1e-6, abs=1e-6)


def _posterior_mean_error(name, problem, prior, exact_mean, exact_sd, seeds=range(3), n=256):
    """Mean over seeds of the RMS error of the weighted posterior mean, in exact posterior sds."""
    from samplers import get_sampler

    errs = []
    for seed in seeds:
        post = get_sampler(name, num_steps=30).sample(problem, prior, n, seed=seed)
        w = torch.softmax(post.log_weights, 0) if post.log_weights is not None else torch.full((n,), 1.0 / n, dtype=F64)
        mean = (w[:, None] * post.samples.reshape(n, -1)).sum(0)
        errs.append(float(((mean - exact_mean) / exact_sd).pow(2).mean().sqrt()))
    return sum(errs) / len(errs)


@pytest.mark.parametrize("name", ["mcgdiff", "afes"])
def test_basis_samplers_are_as_accurate_through_either_route(name, monkeypatch):
    """MCGdiff and AFES draw noise in the singular basis, whose signs the two routes choose differently,
    so their particles differ draw by draw; against the exact Gaussian posterior (Gaussian prior, linear
    operator) their error must match the dense route's (measured under the tests' one thread: 0.38-0.45 posterior sds at
    30 steps and 256 particles; ``y_bar`` 1.5 times too large moved it to 1.5 sds, its sign flipped to 5.6-5.9)."""
    problem = _problem(seed=5, size=8, coils=2)
    fm = problem.forward_model
    mu = 0.5 * torch.ones(fm.input_shape, dtype=F64)
    prior = GaussianPrior(mu, std=0.3)
    A, sy = fm.matrix().to(F64), float(problem.noise.sigma)
    cov = torch.linalg.inv(A.T @ A / sy**2 + torch.eye(A.shape[1], dtype=F64) / 0.3**2)
    exact_mean = cov @ (A.T @ problem.y.reshape(-1) / sy**2 + mu.reshape(-1) / 0.3**2)
    dense = _posterior_mean_error(name, problem, prior, exact_mean, cov.diagonal().sqrt())
    monkeypatch.setattr(smc, "MAX_DENSE_ENTRIES", 0)
    free = _posterior_mean_error(name, problem, prior, exact_mean, cov.diagonal().sqrt())
    assert free < 1.25 * dense + 0.05 and free < 0.8, (free, dense)


def test_dense_decomposition_is_reused_with_identical_results(monkeypatch):
    calls = _count_calls(monkeypatch, "thin_svd")
    problem = _problem(seed=6)
    prior = _ShiftedPrior(torch.zeros(problem.forward_model.input_shape, dtype=F64))
    first = LinearGaussian.from_problem(problem, prior)
    again = LinearGaussian.from_problem(InverseProblem(problem.forward_model, problem.y - 0.2, problem.noise), prior)
    assert len(calls) == 1
    fresh = InverseProblem(problem.forward_model, problem.y - 0.2, problem.noise)
    monkeypatch.setattr(linalg, "_CACHE", type(linalg._CACHE)())
    uncached = LinearGaussian.from_problem(fresh, prior)
    assert len(calls) == 2
    for name in ("U", "s", "Vh", "y_bar"):
        assert torch.equal(getattr(again, name), getattr(uncached, name)), name
    assert again.log_perp == uncached.log_perp and not torch.equal(first.y_bar, again.y_bar)
    # another prior normalisation is another linear map: decomposed anew
    LinearGaussian.from_problem(problem, GaussianPrior(torch.zeros(problem.forward_model.input_shape, dtype=F64)))
    assert len(calls) == 3


def test_posterior_reports_the_decomposition_cost_and_its_reuse(monkeypatch):
    from samplers import get_sampler

    monkeypatch.setattr(linalg, "_CACHE", type(linalg._CACHE)())
    problem = _problem(seed=7, size=8, coils=2)
    prior = GaussianPrior(0.5 * torch.ones(problem.forward_model.input_shape, dtype=F64), std=0.3)
    first = get_sampler("mcgdiff", num_steps=4).sample(problem, prior, 4, seed=0).diagnostics
    second = get_sampler("afes", num_steps=4).sample(problem, prior, 4, seed=0).diagnostics
    assert first["basis_reused"] is False and second["basis_reused"] is True
    assert first["basis_s"] > 0 and second["basis_s"] == first["basis_s"]
    assert "basis_s" not in get_sampler("dps", num_steps=4).sample(problem, prior, 2, seed=0).diagnostics
