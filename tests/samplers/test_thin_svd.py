"""The dense operator decomposition of the exact-linear SMC samplers (``forward_models.linalg.thin_svd``)."""

import pytest
import torch

from forward_models.linalg import GRAM_MIN_SIDE, thin_svd


def _matrix(m, d, spectrum, seed=0):
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(m, len(spectrum), generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(d, len(spectrum), generator=g, dtype=torch.float64))
    return U @ torch.diag(spectrum) @ V.T


@pytest.mark.parametrize("m,d", [(GRAM_MIN_SIDE + 40, GRAM_MIN_SIDE + 100), (GRAM_MIN_SIDE + 100, GRAM_MIN_SIDE + 40)])
def test_gram_path_matches_the_svd_above_its_cutoff(m, d):
    r = GRAM_MIN_SIDE + 20
    spectrum = torch.logspace(1, -3, r, dtype=torch.float64)  # condition number 1e4: all above the cut-off
    A = _matrix(m, d, spectrum)
    U, s, Vh, rel = thin_svd(A)
    assert rel == 1e-5
    assert s.shape == (r,)  # the rank-deficient remainder (numerically ~1e-15) is dropped
    torch.testing.assert_close(s, spectrum, rtol=1e-6, atol=0)
    torch.testing.assert_close(U @ torch.diag(s) @ Vh, A, rtol=0, atol=1e-9)
    torch.testing.assert_close(Vh @ Vh.T, torch.eye(r, dtype=torch.float64), rtol=0, atol=1e-8)
    torch.testing.assert_close(U.T @ U, torch.eye(r, dtype=torch.float64), rtol=0, atol=1e-8)


def test_small_matrices_use_the_svd_and_keep_tiny_singular_values():
    spectrum = torch.tensor([3.0, 1.0, 1e-9], dtype=torch.float64)
    U, s, Vh, rel = thin_svd(_matrix(6, 9, spectrum))
    assert rel == 1e-12
    torch.testing.assert_close(s[:3], spectrum, rtol=1e-6, atol=1e-14)
