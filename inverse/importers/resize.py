"""Bringing measured data to the image size a prior was trained at: k-space central crop, or a clear refusal.

For Cartesian k-space ``k`` of an ``H x W`` image on the centred orthonormal DFT, keeping the central
``s x s`` entries (zero padding when ``s`` is larger) and scaling by ``s / sqrt(H W)`` gives the k-space
of the ``s x s`` image with the *same field of view*: the image is resampled by ideal low-pass (sinc)
interpolation and its intensities are kept (the Riemann sum of the DFT over the coarser grid; Bracewell,
*The Fourier Transform and its Applications*, ch. 10). Resolution drops to ``FOV / s``; noise of
standard deviation ``sigma`` becomes ``sigma s / sqrt(H W)``. The mask is cropped with the data.

Example::

    import numpy as np
    from inverse.importers.resize import crop_kspace
    k, mask, scale = crop_kspace(np.ones((4, 320, 320), complex), np.ones((320, 320)), 64)   # (4, 64, 64)
"""

from __future__ import annotations

import numpy as np

from inverse.errors import UserError

__all__ = ["crop_kspace", "prior_sizes", "check_prior_size"]


def _centre(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    N = a.shape[axis]
    if n <= N:
        start = N // 2 - n // 2
        return np.take(a, np.arange(start, start + n), axis=axis)
    pad = [(0, 0)] * a.ndim
    before = n // 2 - N // 2
    pad[axis] = (before, n - N - before)
    return np.pad(a, pad)


def crop_kspace(kspace: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``(kspace, mask, scale)`` cropped / padded centrally to ``size x size`` (last two axes), intensity-scaled.

    ``scale = size / sqrt(H W)`` multiplies the data (and the noise level); the DC entry stays at
    ``(size // 2, size // 2)``, the centre of the library's centred DFT.
    """
    H, W = kspace.shape[-2:]
    scale = float(size) / float(np.sqrt(H * W))
    k = _centre(_centre(kspace, size, -2), size, -1) * scale
    m = _centre(_centre(mask, size, -2), size, -1)
    return k, m, scale


def prior_sizes() -> dict[str, tuple[int, ...]]:
    """``{prior name: sample shape}`` of the shipped priors (``inverse priors``)."""
    from priors import shipped_priors

    return {name: tuple(card.get("shape", ())) for name, card in shipped_priors().items()}


def check_prior_size(problem: str, shape: tuple, any_size: bool, how: str) -> None:
    """Refuse an image shape no shipped prior takes (unless ``any_size``), naming the sizes available.

    ``how``: what the user can do to change the size (the importer's own resampling or geometry flag).
    """
    if any_size:
        return
    sizes = prior_sizes()
    if tuple(shape) in sizes.values():
        return
    listed = ", ".join(f"{n} {'x'.join(map(str, s[1:]))}" for n, s in sizes.items() if len(s) == 3)
    raise UserError(f"problem {problem!r}: the data fit an image of {' x '.join(map(str, shape[1:]))} pixels, but "
                    f"the shipped priors take {listed or 'no image'} (inverse priors); {how}, or pass --any-size "
                    "to reconstruct with a prior of your own")
