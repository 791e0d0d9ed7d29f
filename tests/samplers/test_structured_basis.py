"""Structured and truncated singular bases (``forward_models.singular_basis``) against the dense decomposition, and
the samplers in a singular basis past the old 8,192-unknown limit."""

import math
import warnings

import pytest
import torch

import forward_models.singular_basis as sb
import samplers.smc.linear_gaussian as smc
from forward_models import Gaussian, InverseProblem
from forward_models.mri import MultiCoilMRI, RealImageMRI, SingleCoilMRI
from forward_models.tomography import ParallelBeamCT
from priors import GaussianPrior
from samplers.smc import LinearGaussian
from samplers.smc.linear_gaussian import BasisTruncationWarning

F64 = torch.float64


class _ShiftedPrior(GaussianPrior):
    """A prior whose model space is an affine image of the physical one (as normalised priors are)."""

    def to_physical(self, x):
        return 0.5 - 0.25 * x  # a negative scale flips U's signs


def _operator(kind: str, size: int):
    if kind == "ct":
        return ParallelBeamCT(size, max(4, size // 2))
    if kind == "mri-real":
        return RealImageMRI(SingleCoilMRI.cartesian(size, acceleration=4, seed=1))
    if kind == "mri-multicoil-real":
        return RealImageMRI(MultiCoilMRI.cartesian(size, acceleration=4, seed=1, num_coils=4, coil_seed=1))
    if kind == "mri-multicoil-complex":
        return MultiCoilMRI.cartesian(size, acceleration=4, seed=1, num_coils=3, coil_seed=1)
    if kind == "mri-complex-2d-mask":  # any mask: the closed-form Fourier basis
        g = torch.Generator().manual_seed(2)
        return SingleCoilMRI((torch.rand(size, size, generator=g) < 0.3).to(F64))
    raise ValueError(kind)


def _problem(fm, seed=0, sigma=0.05):
    g = torch.Generator().manual_seed(seed)
    truth = torch.rand(1, *fm.input_shape, generator=g, dtype=F64)
    y = fm(truth)[0] + sigma * torch.randn(fm.output_shape, generator=g, dtype=F64)
    return InverseProblem(fm, y, Gaussian(sigma))


def _both_routes(problem, prior, monkeypatch):
    structured = LinearGaussian.from_problem(problem, prior)
    with monkeypatch.context() as m:
        m.setattr(smc, "_has_structure", lambda fm: False)
        m.setattr(smc, "MAX_DENSE_ENTRIES", 10**12)  # the dense matrix itself, not the matrix-free route
        dense = LinearGaussian.from_problem(problem, prior)
    return structured, dense


def _check_same_likelihood(structured, dense, problem, prior, atol=1e-9):
    """Same singular values, out-of-range term, projector and likelihood. ``atol``: CT's bases both come from Gram
    eigenproblems (``A A^T`` and ``A^T A``), whose vectors of the smallest kept singular values are resolved to
    ~``eps s_max^2 / s^2`` only, so CT compares projectors to 1e-5."""
    assert structured.rank == dense.rank
    torch.testing.assert_close(torch.sort(structured.s, descending=True).values, dense.s, rtol=1e-8, atol=1e-10)
    assert structured.log_perp == pytest.approx(dense.log_perp, rel=1e-9)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, *prior.shape, generator=g, dtype=F64)
    # the projector onto the observed subspace does not depend on the basis's signs or rotations
    torch.testing.assert_close(structured.lift(structured.project(x)), dense.lift(dense.project(x)),
                               rtol=0, atol=atol)
    exact = problem.log_likelihood(prior.to_physical(x))
    for lg in (structured, dense):
        var = torch.full((lg.rank,), float(problem.noise.sigma) ** 2, dtype=F64)
        torch.testing.assert_close(lg.log_twist(lg.project(x), var), exact, rtol=1e-8, atol=1e-6)


@pytest.mark.parametrize("kind", ["ct", "mri-real", "mri-multicoil-real", "mri-multicoil-complex",
                                  "mri-complex-2d-mask"])
@pytest.mark.parametrize("prior_cls", [GaussianPrior, _ShiftedPrior])
def test_structured_basis_matches_the_dense_decomposition_at_32(kind, prior_cls, monkeypatch):
    fm = _operator(kind, 32 if kind != "mri-multicoil-complex" else 16)
    problem = _problem(fm)
    prior = prior_cls(torch.zeros(fm.input_shape, dtype=F64))
    structured, dense = _both_routes(problem, prior, monkeypatch)
    assert type(structured.basis).__name__ != "DenseBasis" or kind == "ct"
    assert dense.U is not None
    _check_same_likelihood(structured, dense, problem, prior, atol=1e-5 if kind == "ct" else 1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ct", "mri-real", "mri-multicoil-real"])
def test_structured_basis_matches_the_dense_decomposition_at_64(kind, monkeypatch):
    fm = _operator(kind, 64)
    problem = _problem(fm, seed=3)
    prior = _ShiftedPrior(torch.zeros(fm.input_shape, dtype=F64))
    structured, dense = _both_routes(problem, prior, monkeypatch)
    _check_same_likelihood(structured, dense, problem, prior, atol=1e-5 if kind == "ct" else 1e-9)


def test_row_basis_is_orthonormal_and_diagonalises_the_operator():
    fm = _operator("mri-multicoil-real", 16)
    basis = fm.singular_basis()
    V = basis.matrix()
    torch.testing.assert_close(V @ V.T, torch.eye(basis.rank, dtype=F64), rtol=0, atol=1e-12)
    x = torch.randn(4, 256, generator=torch.Generator().manual_seed(0), dtype=F64)
    y = fm(x.reshape(4, *fm.input_shape)).reshape(4, -1)
    torch.testing.assert_close(basis.coefficients(y), basis.s * basis.project(x), rtol=0, atol=1e-12)


def test_a_non_column_mask_has_no_row_basis_and_takes_the_dense_route():
    mask = (torch.rand(16, 16, generator=torch.Generator().manual_seed(0)) < 0.4).to(F64)
    fm = RealImageMRI(SingleCoilMRI(mask))
    assert fm.singular_basis() is None
    problem = _problem(fm)
    lg = LinearGaussian.from_problem(problem, GaussianPrior(torch.zeros(fm.input_shape, dtype=F64)))
    assert type(lg.basis).__name__ == "DenseBasis" and lg.U is not None


def test_randomized_basis_recovers_a_known_spectrum_and_reports_its_truncation():
    g = torch.Generator().manual_seed(4)
    U, _ = torch.linalg.qr(torch.randn(50, 30, generator=g, dtype=F64))
    V, _ = torch.linalg.qr(torch.randn(80, 30, generator=g, dtype=F64))
    spectrum = 2.0 ** -torch.arange(30, dtype=F64)  # fast decay: the range finder is accurate
    A = U @ torch.diag(spectrum) @ V.T
    basis = sb.randomized_basis(lambda X: X @ A.T, lambda Y: Y @ A, 80, 50, rank=8)
    torch.testing.assert_close(basis.s, spectrum[:8], rtol=1e-9, atol=0)
    t = basis.truncation
    assert not t["exact"] and t["rank"] == 8
    assert t["s_next"] == pytest.approx(float(spectrum[8]), rel=1e-6)
    exact_kept = float((spectrum[:8] ** 2).sum() / (spectrum**2).sum())
    assert t["energy_kept"] == pytest.approx(exact_kept, abs=0.2)  # a Hutchinson estimate from 18 vectors
    x = torch.randn(3, 80, generator=g, dtype=F64)
    P = V[:, :8] @ V[:, :8].T
    torch.testing.assert_close(basis.lift(basis.project(x)), x @ P, rtol=0, atol=1e-8)


def test_ct_full_rank_randomized_basis_matches_the_exact_one():
    fm = ParallelBeamCT(16, 8)
    exact = fm.singular_basis()
    full = fm.singular_basis(rank=500)  # rank capped at min(m, d): the whole range
    s_exact = exact.s
    torch.testing.assert_close(full.s[:exact.rank], s_exact, rtol=1e-8, atol=1e-8)
    assert float(full.s[exact.rank:].max()) < 1e-8 * float(s_exact[0])


def test_truncated_basis_warns_when_it_drops_what_the_data_resolve(monkeypatch):
    """An operator without structure beyond the dense limit takes the truncated route; with a memory budget that
    keeps 10 directions of a 16x16 CT at low noise, the dropped ones are resolved by the data: a warning, and the
    truncation in the sampler's diagnostics."""
    from samplers import get_sampler

    monkeypatch.setattr(sb, "MAX_BASIS_BYTES", 8 * 256 * 10)
    monkeypatch.setattr(smc, "_has_structure", lambda fm: False)
    fm = ParallelBeamCT(16, 8)
    problem = _problem(fm, sigma=0.01)
    prior = GaussianPrior(torch.zeros(fm.input_shape, dtype=F64))
    with pytest.warns(BasisTruncationWarning, match="truncated to rank 10.*nats"):
        lg = LinearGaussian.from_problem(problem, prior, max_dense_dim=100)
    monkeypatch.setattr(smc, "MAX_DENSE_DIM", 100)
    assert lg.rank == 10 and not lg.truncation["exact"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BasisTruncationWarning)
        post = get_sampler("ddrm", num_steps=5).sample(problem, prior, 4, seed=0)
    assert post.diagnostics["basis_rank"] == 10 and post.diagnostics["basis_truncation"]["rank"] == 10


def _exact_gaussian_posterior_mean(lg, prior_mean, prior_sd):
    """Posterior mean of ``N(prior_mean, prior_sd^2 I)`` under the basis's likelihood, per coordinate."""
    m = prior_mean.reshape(1, -1)
    zm = lg.project(m)
    prec = lg.s**2 / lg.sigma_y**2 + 1.0 / prior_sd**2
    z_post = (lg.s * lg.y_bar / lg.sigma_y**2 + zm / prior_sd**2) / prec
    return (m + lg.lift(z_post - zm))[0], (1.0 / prec).sqrt()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mri-real", "ct"])
def test_basis_samplers_run_past_8192_unknowns_and_find_the_exact_posterior(kind):
    """MCGdiff, AFES and DDRM on 128x128 (16,384 unknowns) single-coil MRI and CT, Gaussian prior: the weighted
    posterior mean in the observed directions lies within one exact posterior sd of the exact one (RMS over them):
    MCGdiff and DDRM well within (0.6); AFES's 32 weights collapse to one particle in 16,384 dimensions, so its mean
    is one approximate draw and only its bound is 1 (measured 0.12-0.39 for the first two, 0.51-0.77 for AFES)."""
    from samplers import get_sampler

    fm = _operator(kind, 128) if kind != "ct" else ParallelBeamCT(128, 30)
    problem = _problem(fm, seed=5, sigma=0.1)
    mu = 0.5 * torch.ones(fm.input_shape, dtype=F64)
    prior = GaussianPrior(mu, std=0.3)
    lg = LinearGaussian.from_problem(problem, prior)
    assert lg.rank > 0 and lg.truncation["exact"]
    exact_mean, post_sd = _exact_gaussian_posterior_mean(lg, mu, 0.3)
    n = 32
    for name, bound in (("mcgdiff", 0.6), ("ddrm", 0.6), ("afes", 1.0)):
        post = get_sampler(name, num_steps=20).sample(problem, prior, n, seed=0)
        w = torch.softmax(post.log_weights, 0) if post.log_weights is not None else torch.full((n,), 1.0 / n, dtype=F64)
        mean = (w[:, None] * post.samples.reshape(n, -1)).sum(0)
        err = (lg.project((mean - exact_mean)[None])[0] / post_sd).pow(2).mean().sqrt()
        assert float(err) < bound, (name, float(err))  # one exact posterior draw would score ~1
        assert post.diagnostics["basis_kind"] == ("RowBasis" if kind != "ct" else "DenseBasis")


def test_truncation_that_drops_little_information_is_silent(monkeypatch):
    """A fast-decaying spectrum truncated where the dropped singular values are far below the noise: the bound on the
    dropped information is small, no warning, and the record says so."""
    from forward_models import MatrixOperator

    g = torch.Generator().manual_seed(6)
    U, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=F64))
    V, _ = torch.linalg.qr(torch.randn(40, 30, generator=g, dtype=F64))
    A = U @ torch.diag(2.0 ** -torch.arange(30, dtype=F64)) @ V.T
    fm = MatrixOperator(A, dtype=F64)
    problem = _problem(fm, sigma=0.1)
    monkeypatch.setattr(sb, "MAX_BASIS_BYTES", 8 * 40 * 8)  # rank 8: s_next = 2^-8, signal-to-noise 0.04
    monkeypatch.setattr(smc, "_has_structure", lambda fm: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BasisTruncationWarning)
        lg = LinearGaussian.from_problem(problem, GaussianPrior(torch.zeros(40, dtype=F64)), max_dense_dim=10)
    t = lg.truncation
    assert t["rank"] == 8 and t["snr_first_dropped"] == pytest.approx(2.0**-8 / 0.1, rel=1e-6)
    assert t["information_dropped_bound"] == pytest.approx(0.5 * 22 * math.log1p(t["snr_first_dropped"] ** 2))
    assert t["information_dropped_bound"] < smc.TRUNCATION_WARN_NATS
