"""An inverse problem: a forward model, a noise model and one measurement ``y``.

``log p(y | x) = noise.log_likelihood(y, F(x))``: samplers compose it with a prior's
``to_physical`` map, ``problem.log_likelihood(prior.to_physical(x))``.
"""

from __future__ import annotations

import torch

from forward_models.base import ForwardModel, check_batch
from forward_models.errors import ForwardModelError
from forward_models.noise import NoiseModel

__all__ = ["InverseProblem"]


class InverseProblem:
    """Forward model + noise model + measurement: everything a sampler needs besides the prior.

    Parameters
    ----------
    forward_model : ForwardModel
    y : tensor of shape ``forward_model.output_shape`` (one measurement, no batch dimension), finite; real
        unless the forward model declares ``complex_output = True`` (a complex ``y`` for a real-valued model is
        refused rather than cast, which would drop its imaginary part)
    noise : NoiseModel, e.g. ``Gaussian(0.05)``
    truth : optional ground truth of shape ``forward_model.input_shape`` (for scores and figures), real and finite

    Example::

        import torch
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        op = MatrixOperator(torch.randn(2, 4))
        problem = InverseProblem.simulate(op, Gaussian(0.1), torch.zeros(4), seed=0)
        ll = problem.log_likelihood(torch.randn(16, 4))      # (16,)
    """

    def __init__(self, forward_model: ForwardModel, y: torch.Tensor, noise: NoiseModel, *, truth=None):
        if not isinstance(forward_model, ForwardModel):
            raise TypeError(f"forward_model must be a ForwardModel, got {type(forward_model).__name__}")
        if not isinstance(noise, NoiseModel):
            raise TypeError(f"noise must be a NoiseModel such as Gaussian(sigma), got {type(noise).__name__}")
        y = torch.as_tensor(y)
        if y.is_complex() and not getattr(forward_model, "complex_output", False):
            raise ForwardModelError(f"the measurement is complex ({y.dtype}) but {type(forward_model).__name__} "
                                    "produces real data: pass real and imaginary parts as the model lays them out "
                                    "(e.g. a leading axis of 2 for MRI k-space), not a complex array")
        if tuple(y.shape) != tuple(forward_model.output_shape):
            raise ForwardModelError(f"the measurement has shape {tuple(y.shape)} but {type(forward_model).__name__} "
                                    f"produces {tuple(forward_model.output_shape)}")
        if not bool(torch.isfinite(y).all()):
            raise ForwardModelError(f"the measurement contains {int((~torch.isfinite(y)).sum())} NaN or Inf values")
        if truth is not None:
            truth = torch.as_tensor(truth)
            if tuple(truth.shape) != tuple(forward_model.input_shape):
                raise ForwardModelError(f"the truth has shape {tuple(truth.shape)}, expected "
                                        f"{tuple(forward_model.input_shape)}")
            if truth.is_complex() or not bool(torch.isfinite(truth).all()):
                raise ForwardModelError("the truth must be real and finite: it contains "
                                        + ("complex values" if truth.is_complex() else
                                           f"{int((~torch.isfinite(truth)).sum())} NaN or Inf values"))
        self.forward_model = forward_model
        self.y = y
        self.noise = noise
        self.truth = truth

    @classmethod
    def simulate(cls, forward_model: ForwardModel, noise: NoiseModel, truth: torch.Tensor, *,
                 seed: int | None = None, generator: torch.Generator | None = None) -> InverseProblem:
        """Measure ``truth`` through the forward model and add noise (seeded)."""
        truth = torch.as_tensor(truth)
        if generator is None:
            generator = torch.Generator(device=truth.device)
            generator.manual_seed(0 if seed is None else int(seed))
        with torch.no_grad():
            y = noise.sample(forward_model(truth[None]), generator)[0]
        return cls(forward_model, y, noise, truth=truth)

    @property
    def device(self) -> torch.device:
        """Device of the measurement."""
        return self.y.device

    def to(self, device) -> InverseProblem:
        """A copy of the problem on ``device``."""
        truth = None if self.truth is None else self.truth.to(device)
        return InverseProblem(self.forward_model.to(device), self.y.to(device), self.noise, truth=truth)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(y | x)`` for a batch of physical-unit inputs ``(B, *input_shape)`` -> (B,)."""
        check_batch(x, self.forward_model.input_shape, "input")
        y_clean = self.forward_model(x)
        return self.noise.log_likelihood(self.y.to(y_clean.dtype)[None].expand_as(y_clean), y_clean)

    def residual_norm(self, x: torch.Tensor) -> torch.Tensor:
        """Noise-model residual norm ``||y - F(x)||`` per batch element (DPS's guidance term)."""
        y_clean = self.forward_model(x)
        return self.noise.residual_norm(self.y.to(y_clean.dtype)[None].expand_as(y_clean), y_clean)

    def config(self) -> dict:
        """JSON description of the forward and noise models."""
        return {"forward_model": self.forward_model.config(), "noise": self.noise.config()}
