"""Linear algebra of linear operators: thin SVDs, matrix-free Gram spectra, and a cache of decompositions.

- :func:`thin_svd`: ``A = U diag(s) Vh`` of a dense matrix, through the smaller Gram matrix's symmetric
  eigenproblem when both sides are large (Golub and Van Loan 2013, sec. 8.6);
- :func:`gram_eigh`: singular values and right singular vectors of a map known only through products
  with ``L^T L`` (an operator and its adjoint), built ``chunk`` columns at a time;
- :func:`cached_decomposition` / :func:`operator_fingerprint`: a least-recently-used cache of
  decompositions keyed by the operator's class, shapes, configuration and a SHA-256 of every tensor it
  holds, so that several samplers on one problem, or many instances sharing one mask, decompose it once.

A Gram matrix's eigenvalue carries an absolute error ~ ``eps s_max^2``, so singular values below
:data:`~forward_models.base.GRAM_CUTOFF` ``s_max`` are not resolved and are dropped (treated as unobserved).
"""

from __future__ import annotations

import collections
import hashlib
import math
import time

import torch

from forward_models.base import GRAM_CUTOFF

__all__ = ["GRAM_CUTOFF", "GRAM_MIN_SIDE", "GRAM_CACHE_SIZE", "thin_svd", "gram_eigh", "gram_spectrum",
           "cached_decomposition", "clear_decomposition_cache", "operator_fingerprint"]

#: smallest side from which :func:`thin_svd` decomposes the Gram matrix instead of calling ``svd``
GRAM_MIN_SIDE = 256

#: decompositions kept by :func:`cached_decomposition` (a matrix-free ``(s, Vh)`` takes ``8 d^2`` bytes in
#: float64, a dense one adds ``U``, ``8 m r`` bytes)
GRAM_CACHE_SIZE = 2
_CACHE: collections.OrderedDict[tuple, tuple] = collections.OrderedDict()


def gram_spectrum(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``G = Q diag(s^2) Q^T`` for a symmetric Gram matrix: ``(s, Q)`` in descending order, singular values
    below ``GRAM_CUTOFF s_max`` dropped (not resolved by the eigenvalues: module docstring)."""
    lam, Q = torch.linalg.eigh(G)
    lam, Q = lam.flip(0), Q.flip(1)  # descending
    s = lam.clamp_min(0).sqrt()
    keep = s > GRAM_CUTOFF * float(s.max()) if s.numel() else s > 0
    return s[keep], Q[:, keep]


def thin_svd(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Thin SVD ``A = U diag(s) Vh`` of a dense ``(m, d)`` matrix and the relative cut-off it supports.

    Small matrices (``min(m, d) < GRAM_MIN_SIDE``): ``torch.linalg.svd``, cut-off ``1e-12``. Larger ones
    through the symmetric eigenproblem of the smaller Gram matrix: for ``m <= d``,
    ``A A^T = U diag(s^2) U^T`` and ``Vh = diag(1/s) U^T A`` (symmetrically for ``m > d``), several times
    cheaper than the SVD; the cut-off returned is then ``GRAM_CUTOFF`` and callers drop what lies below it.

    Example::

        import torch
        from forward_models.linalg import thin_svd
        U, s, Vh, rel = thin_svd(torch.randn(3, 5, dtype=torch.float64))
    """
    m, d = A.shape
    if min(m, d) < GRAM_MIN_SIDE:
        U, s, Vh = torch.linalg.svd(A, full_matrices=False)
        return U, s, Vh, 1e-12
    wide = m <= d
    s, Q = gram_spectrum(A @ A.T if wide else A.T @ A)
    rel = GRAM_CUTOFF
    if wide:
        return Q, s, (Q.T @ A) / s[:, None], rel
    return (A @ Q) / s[None, :], s, Q.T, rel


def gram_eigh(normal, input_shape, chunk: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values and right singular vectors of a linear map ``L`` from products with ``L^T L``.

    ``normal(x)`` returns ``L^T L x`` for a float64 batch ``(k, *input_shape)``. The Gram matrix
    ``G = L^T L`` is built ``chunk`` columns at a time from the basis vectors (memory ``O(d^2)``, never the
    ``O(m d)`` of ``L``'s matrix), then ``G = V diag(s^2) V^T`` (symmetric eigenproblem, float64), singular
    values below ``GRAM_CUTOFF s_max`` dropped. Returns ``(s, Vh)``, ``s`` descending and ``Vh = V^T`` of
    shape ``(r, d)``.
    """
    d = math.prod(input_shape)
    f64 = torch.float64
    G = torch.empty(d, d, dtype=f64)
    for i in range(0, d, chunk):
        k = min(chunk, d - i)
        e = torch.zeros(k, d, dtype=f64)
        e[torch.arange(k), torch.arange(i, i + k)] = 1.0
        G[i:i + k] = normal(e.reshape(k, *input_shape)).reshape(k, d).to(f64)
    s, V = gram_spectrum(0.5 * (G + G.T))  # exact symmetry for eigh
    return s, V.T


def cached_decomposition(key: tuple, compute) -> tuple[object, float, bool]:
    """``(compute(), seconds it took, reused)``, memoised in a least-recently-used cache of
    :data:`GRAM_CACHE_SIZE` entries (a reused value reports the seconds of the call that computed it)."""
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return (*_CACHE[key], True)
    t0 = time.perf_counter()
    value = compute()
    _CACHE[key] = (value, time.perf_counter() - t0)
    while len(_CACHE) > GRAM_CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value, _CACHE[key][1], False


def clear_decomposition_cache() -> None:
    """Forget every cached decomposition."""
    _CACHE.clear()


def _tensor_digest(h, t: torch.Tensor) -> None:
    """Feed a tensor's dtype, shape and contents (values and indices of a sparse one) to hash ``h``."""
    t = t.detach().cpu()
    h.update(f"{t.dtype}:{t.layout}:{tuple(t.shape)}".encode())
    if t.layout == torch.sparse_coo:
        t = t.coalesce()
        parts = [t.indices(), t.values()]
    elif t.layout == torch.sparse_csr:
        parts = [t.crow_indices(), t.col_indices(), t.values()]
    else:
        parts = [t]
    for part in parts:
        part = part.contiguous()
        if part.numel():
            h.update(part.view(-1).view(torch.uint8).numpy().tobytes())


def operator_fingerprint(fm, input_map=None, shape=None, context: tuple = ()) -> tuple:
    """Key of a decomposition of ``x -> fm(input_map(x))``: the operator's class, shapes, ``config()`` and a
    SHA-256 of every tensor it holds (parameters, buffers and plain tensor attributes of all its submodules),
    and of ``input_map`` (e.g. a prior's ``to_physical``) at zero and at a fixed probe of ``shape``;
    ``context`` (e.g. the identity and dtype of the object owning ``input_map``) is appended. Any change to
    a mask, coil map or normalisation gives a new key."""
    h = hashlib.sha256()
    modules = fm.modules() if isinstance(fm, torch.nn.Module) else [fm]
    for mod in modules:
        tensors = dict(mod.state_dict(keep_vars=False)) if isinstance(mod, torch.nn.Module) else {}
        tensors.update({k: v for k, v in vars(mod).items() if isinstance(v, torch.Tensor)})
        for name in sorted(tensors):
            h.update(f"{type(mod).__name__}.{name}".encode())
            _tensor_digest(h, tensors[name])
    config = fm.config() if callable(getattr(fm, "config", None)) else {}
    if input_map is not None:
        probe = torch.randn(1, *shape, generator=torch.Generator().manual_seed(12345), dtype=torch.float64)
        with torch.no_grad():
            t_probe = torch.cat([input_map(torch.zeros_like(probe)), input_map(probe)]).to("cpu", torch.float64)
        h.update(t_probe.numpy().tobytes())
    return (type(fm).__qualname__, tuple(fm.input_shape), tuple(fm.output_shape), repr(config), *context,
            h.hexdigest())
