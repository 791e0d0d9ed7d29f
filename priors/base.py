"""The prior contract: a denoiser in sigma space (variance-exploding / EDM form).

Every prior in this library answers one question: given a noisy sample

    x_sigma = x0 + sigma * eps,   eps ~ N(0, I),

what is the minimum-mean-square-error estimate ``D(x_sigma, sigma) = E[x0 | x_sigma]``?
By Tweedie's formula the score of the noised prior follows:
``grad log p_sigma(x) = (D(x, sigma) - x) / sigma**2`` (Karras et al. 2022, "Elucidating the
design space of diffusion-based generative models", eq. 3).

Samplers work in the prior's *model space* (for example [-1, 1]); ``to_physical`` and
``from_physical`` map to the physical units of the forward model (for example m/s).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from priors.errors import PriorError

__all__ = ["Prior", "check_denoise_input", "sample_arguments"]


def check_denoise_input(x: torch.Tensor, sigma: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Validate a ``denoise`` call and return ``sigma`` as a ``(B,)`` tensor on ``x``'s device.

    Raises ``ValueError`` naming the problem when ``x`` is not a batch of ``shape`` or
    ``sigma`` has the wrong size or negative entries.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"denoise expects a torch.Tensor, got {type(x).__name__}")
    if tuple(x.shape[1:]) != tuple(shape):
        raise PriorError(
            f"denoise expects a batch of shape (B, {', '.join(map(str, shape))}), got {tuple(x.shape)}"
        )
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.ndim == 0:
        sigma = sigma.expand(x.shape[0])
    if sigma.shape != (x.shape[0],):
        raise PriorError(f"sigma must be a scalar or have shape ({x.shape[0]},), got {tuple(sigma.shape)}")
    if bool((sigma < 0).any()):
        raise PriorError("sigma must be non-negative")
    return sigma


def sample_arguments(n, generator, num_steps, steps, seed, batch_size=None) -> tuple[int, torch.Generator | None, int]:
    """Check the arguments of :meth:`Prior.sample`; returns ``(n, generator, num_steps)``, with ``steps``
    taking precedence over ``num_steps`` and a CPU generator seeded with ``seed`` where one is given."""

    def _integer(v) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if not _integer(n) or int(n) < 1:
        raise PriorError(f"the number of samples must be a positive integer, got {n!r}")
    num_steps = num_steps if steps is None else steps
    if num_steps is not None and (not _integer(num_steps) or int(num_steps) < 1):
        raise PriorError(f"steps must be a positive integer, got {num_steps!r}")
    if batch_size is not None and (not _integer(batch_size) or int(batch_size) < 1):
        raise PriorError(f"batch_size must be a positive integer, got {batch_size!r}")
    if seed is not None:
        if generator is not None:
            raise PriorError("pass a generator or a seed, not both")
        if not _integer(seed) or not 0 <= int(seed) < 2**63:
            raise PriorError(f"seed must be an integer in 0 .. 2**63 - 1, got {seed!r}")
        generator = torch.Generator().manual_seed(int(seed))
    return int(n), generator, None if num_steps is None else int(num_steps)


class Prior(torch.nn.Module):
    """Base class of every prior: a sigma-space denoiser ``D(x, sigma) ~= E[x0 | x_sigma]``.

    Subclasses implement :meth:`denoise` on batches ``(B, *shape)`` with ``sigma`` of shape
    ``(B,)`` and set :attr:`shape`, :attr:`sigma_min`, :attr:`sigma_max`. The score is
    ``(D(x, sigma) - x) / sigma**2`` (Tweedie).

    Example: a new prior in ten lines (the exact denoiser of N(0, I))::

        import torch
        from priors import Prior

        class StandardNormal(Prior):
            def __init__(self, d):
                super().__init__()
                self.shape, self.sigma_min, self.sigma_max = (d,), 1e-3, 100.0
            def denoise(self, x, sigma):
                s2 = sigma.reshape(-1, 1) ** 2
                return x / (1.0 + s2)

        prior = StandardNormal(4)
        x0_hat = prior.denoise(torch.randn(8, 4), torch.full((8,), 2.0))
        x = prior.sample(8, torch.Generator().manual_seed(0))   # by the probability-flow ODE
    """

    shape: tuple[int, ...] = ()
    sigma_min: float = 2e-3
    sigma_max: float = 80.0
    #: names of the dimensions of one sample, used for NetCDF output
    dims: tuple[str, ...] | None = None

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Return ``E[x0 | x_sigma = x]`` for a batch ``x`` of shape ``(B, *shape)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Alias of :meth:`denoise`, so a prior can be called like a network."""
        return self.denoise(x, sigma)

    def score(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Score of the noised prior by Tweedie's formula: ``(D(x, sigma) - x) / sigma**2``."""
        sigma = check_denoise_input(x, sigma, self.shape)
        s2 = sigma.reshape(-1, *([1] * len(self.shape))) ** 2
        return (self.denoise(x, sigma) - x) / s2

    def sample(self, n: int, generator: torch.Generator | None = None, *, num_steps: int = 18,
               steps: int | None = None, seed: int | None = None, physical: bool = False,
               batch_size: int | None = None) -> torch.Tensor:
        """Draw ``n`` samples ``(n, *shape)`` of the prior, in its dtype and on its device.

        The base class integrates the probability-flow ODE ``dx/dsigma = (x - D(x, sigma)) / sigma`` from
        ``x = sigma_max z``, ``z ~ N(0, I)`` (drawn with ``generator``, on its device), down to ``sigma = 0``
        by ``num_steps`` Heun steps of the EDM schedule (:func:`priors.ode.latent_to_sample`; Karras et al.
        2022, Algorithm 1 without churn): deterministic given ``z``, exact up to the discretisation and the
        denoiser's own error. Priors with an exact sampler (Gaussian, Gaussian mixture, Gaussian field)
        override this and ignore the number of steps.

        Arguments
        ---------
        n : number of samples (a positive integer).
        generator : the random stream of ``z``; or ``seed`` (0 .. 2**63 - 1), a CPU stream seeded with it, so
            that a seed gives the same draws on every device (up to the device's arithmetic).
        num_steps, steps : ODE steps (``steps`` is the short name; at least 2).
        physical : return physical units (:meth:`to_physical`) instead of model space.
        batch_size : integrate the ODE on this many samples at a time (all of them by default); the latents are
            drawn at once first, so the samples do not depend on it.

        Example::

            import torch
            from priors import GaussianPrior
            prior = GaussianPrior(torch.zeros(3), std=2.0)
            assert torch.equal(prior.sample(4, seed=1), prior.sample(4, seed=1))
        """
        from priors.ode import latent_to_sample  # priors.ode imports this module

        n, generator, num_steps = sample_arguments(n, generator, num_steps, steps, seed, batch_size)
        if num_steps < 2:
            raise PriorError(f"the probability-flow ODE needs at least 2 steps, got {num_steps}")
        where = generator.device if generator is not None else self.device
        z = torch.randn(n, *self.shape, generator=generator, dtype=self.dtype, device=where)
        chunk = n if batch_size is None else int(batch_size)
        with torch.no_grad():
            x = torch.cat([latent_to_sample(self, zi.to(self.device), num_steps)[0] for zi in z.split(chunk)])
        return self.to_physical(x) if physical else x

    def to_physical(self, x: torch.Tensor) -> torch.Tensor:
        """Map model-space samples to physical units (identity unless a subclass overrides it)."""
        return x

    def from_physical(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_physical`."""
        return x

    @property
    def device(self) -> torch.device:
        """Device of the prior's parameters and buffers (CPU when it has none)."""
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the prior's parameters and buffers (float32 when it has none):
        samplers create their particles in it."""
        for t in list(self.parameters()) + list(self.buffers()):
            if t.is_floating_point():
                return t.dtype
        return torch.float32

    def config(self) -> dict:
        """JSON-serialisable description of this prior, stored in every output file."""
        return {"class": type(self).__name__, "shape": list(self.shape)}
