"""Shared base of network priors: the network, one sample's shape, the model card and the affine
normalisation between model space and physical units. Subclasses add only the conversion of the
network's output to ``E[x0 | x_sigma]`` (EDM, VP diffusion, flow matching)."""

from __future__ import annotations

import torch

from priors.base import Prior
from priors.errors import PriorError
from priors.normalisation import Normalisation

__all__ = ["NetworkPrior", "network_call"]


def network_call(network: torch.nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``network(x, t)`` (diffusers' ``.sample`` unwrapped), padded to the network's native size if larger.

    A UNet with ``L`` levels needs sides divisible by ``2^(L-1)``; a 70 x 70 field (OpenFWI) fits at
    most two levels, too few for layer-scale structure. Such priors are trained with the network at the
    next multiple (72 x 72 for three levels): the input is padded by edge replication, split evenly
    between both sides, and the output cropped back, in training and in sampling alike.
    """
    size = getattr(getattr(network, "config", None), "sample_size", None)
    h, w = x.shape[-2:]
    hn, wn = (h, w) if size is None else (size, size) if isinstance(size, int) else tuple(size)
    if h > hn or w > wn:
        raise PriorError(f"input {h} x {w} is larger than the network's {hn} x {wn}")
    top, left = (hn - h) // 2, (wn - w) // 2
    if (h, w) != (hn, wn):
        x = torch.nn.functional.pad(x, (left, wn - w - left, top, hn - h - top), mode="replicate")
    out = network(x, t)
    out = out.sample if hasattr(out, "sample") else out
    return out if (h, w) == (hn, wn) else out[..., top:top + h, left:left + w]


class NetworkPrior(Prior):
    """A prior backed by a network: holds ``network``, ``shape``, ``normalisation``, ``card``, ``dims``."""

    def __init__(self, network: torch.nn.Module, shape, *, sigma_min: float, sigma_max: float,
                 normalisation: Normalisation | None = None, card: dict | None = None, dims=None):
        super().__init__()
        self.network = network
        self.shape = tuple(int(s) for s in shape)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.normalisation = normalisation or Normalisation()
        self.card = dict(card or {})
        self.dims = dims

    @property
    def dtype(self) -> torch.dtype:
        """The network's dtype (particles are created in it)."""
        return next(self.network.parameters()).dtype

    def network_output(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``network(x, t)``, unwrapping diffusers' ``.sample`` outputs (padded: :func:`network_call`)."""
        return network_call(self.network, x, t)

    def to_physical(self, x):
        """Model space -> physical units (the card's normalisation)."""
        return self.normalisation.to_physical(x)

    def from_physical(self, x):
        """Physical units -> model space."""
        return self.normalisation.from_physical(x)

    def config(self) -> dict:
        """Class, shape, sigma range, normalisation and the card's name."""
        return {"class": type(self).__name__, "shape": list(self.shape), "sigma_min": self.sigma_min,
                "sigma_max": self.sigma_max, "normalisation": self.normalisation.to_dict(),
                "name": self.card.get("name", "")}
