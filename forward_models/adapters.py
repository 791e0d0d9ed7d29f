"""Adapters between our :class:`ForwardModel` contract and other worlds: deepinv physics, numpy callables.

- :class:`DeepInvForwardModel`: any ``deepinv.physics.Physics`` as a ForwardModel: ``F(x) = physics.A(x)``
  (noise-free; the noise model is ours), linear with ``A^T = physics.A_adjoint`` when the physics is
  a ``LinearPhysics`` (Tachella et al., "DeepInverse: a Python package for solving imaging inverse
  problems with deep learning", JOSS 2025).
- :func:`to_deepinv`: the other way: any ForwardModel as a deepinv ``LinearPhysics`` (linear ones:
  ``A``, ``A_adjoint``, ``A_dagger`` = our pseudo-inverse ``A^T (A A^T)^+``) or ``Physics``.
- :class:`BlackBoxForwardModel`: a numpy-in, numpy-out simulator (per sample or batched) with
  ``differentiable = False``: only derivative-free samplers accept it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from forward_models.base import ForwardModel, check_batch
from forward_models.errors import ForwardModelError

if TYPE_CHECKING:  # for annotations only
    import deepinv

# deepinv is imported where it is used: it takes seconds to import, and the forward-model registry
# imports this module whether or not deepinv is used.

__all__ = ["DeepInvForwardModel", "ForwardModelPhysics", "LinearForwardModelPhysics", "to_deepinv",  # noqa: F822 (PEP 562)
           "BlackBoxForwardModel", "damped_oscillator", "REGISTRY_ENTRIES"]

_COMPLEX = {torch.float16: torch.complex32, torch.float32: torch.complex64, torch.float64: torch.complex128}


def _module_device(module: torch.nn.Module) -> torch.device:
    return next((t.device for t in list(module.parameters()) + list(module.buffers())), torch.device("cpu"))


class DeepInvForwardModel(ForwardModel):
    """A ``deepinv.physics.Physics`` as a ForwardModel: ``F(x) = physics.A(x)`` on ``(B, *input_shape)``.

    ``linear`` is True exactly when ``physics`` is a ``deepinv.physics.LinearPhysics``; then
    ``adjoint(y) = physics.A_adjoint(y)`` and the pseudo-inverse is the base class's conjugate-gradient
    ``A^T (A A^T + damping I)^{-1} y``. ``output_shape`` comes from one probe evaluation
    ``physics.A(zeros(1, *input_shape))``. The physics' noise model is not used (noise is ours);
    its floating (and complex) tensors follow the input's dtype, so float64 inputs give float64
    measurements. Measurements must be one tensor (stacked physics returning a ``TensorList``
    are refused).

    Example::

        import torch, deepinv
        from forward_models.adapters import DeepInvForwardModel
        blur = deepinv.physics.Blur(filter=torch.ones(1, 1, 3, 3) / 9, padding="circular")
        op = DeepInvForwardModel(blur, (1, 8, 8))
        y = op(torch.randn(2, 1, 8, 8))            # (2, 1, 8, 8)
        x_adj = op.adjoint(y)
    """

    differentiable = True

    def __init__(self, physics, input_shape, *, device=None):
        super().__init__()
        from deepinv.physics import LinearPhysics, Physics

        if not isinstance(physics, Physics):
            raise ForwardModelError("DeepInvForwardModel needs a deepinv.physics.Physics, got "
                                    f"{type(physics).__name__}")
        input_shape = tuple(int(s) for s in input_shape)
        if not input_shape or any(s < 1 for s in input_shape):
            raise ForwardModelError("DeepInvForwardModel: input_shape must be non-empty and positive, got "
                                    f"{input_shape}")
        self.physics = physics
        self.linear = isinstance(physics, LinearPhysics)
        self.input_shape = input_shape
        if device is not None:
            self.to(device)
        dtype = next((t.dtype for t in self._floating_tensors()), torch.get_default_dtype())
        with torch.no_grad():
            probe = physics.A(torch.zeros(1, *input_shape, dtype=dtype, device=_module_device(physics)))
        if not isinstance(probe, torch.Tensor) or probe.ndim < 1 or probe.shape[0] != 1:
            raise ForwardModelError(f"DeepInvForwardModel: {type(physics).__name__}.A must return one tensor with the "
                                    f"batch dimension first, got {type(probe).__name__}")
        self.output_shape = tuple(probe.shape[1:])
        self.complex_output = bool(probe.is_complex())  # InverseProblem accepts a complex y only then

    def _floating_tensors(self):
        return [t for t in list(self.physics.parameters()) + list(self.physics.buffers())
                if t.is_floating_point() or t.is_complex()]

    def _follow_dtype(self, dtype: torch.dtype) -> None:
        """Cast the physics' real tensors to ``dtype`` and its complex ones to the matching complex dtype."""
        tensors = self._floating_tensors()
        if not dtype.is_floating_point or all(t.dtype in (dtype, _COMPLEX.get(dtype)) for t in tensors):
            return
        cdtype = _COMPLEX.get(dtype)
        self.physics._apply(lambda t: t.to(dtype) if t.is_floating_point()
                            else t.to(cdtype) if t.is_complex() and cdtype is not None else t)

    def forward(self, x):
        """``physics.A(x)``."""
        self._follow_dtype(x.dtype)
        return self.physics.A(x)

    def adjoint(self, y):
        """``physics.A_adjoint(y)`` (linear physics only)."""
        if not self.linear:
            raise NotImplementedError(f"{type(self.physics).__name__} is not a deepinv LinearPhysics: "
                                      "it has no adjoint")
        check_batch(y, self.output_shape, "measurement")
        self._follow_dtype(y.dtype)
        return self.physics.A_adjoint(y)

    def config(self):
        """Configuration: the wrapped physics' class (its tensors are not serialised)."""
        return {**super().config(), "physics": type(self.physics).__name__}


def _export_classes() -> dict:
    """The two deepinv physics classes wrapping our models, built on first use (deepinv imports slowly)."""
    if _EXPORTED:
        return _EXPORTED
    from deepinv.physics import LinearPhysics, Physics

    class ForwardModelPhysics(Physics):
        """One of our (non-linear) ForwardModels as a ``deepinv.physics.Physics``: ``A(x) = model(x)``.

        deepinv's ``physics(x)`` adds its ``noise_model`` (``ZeroNoise`` unless given) to ``A(x)``.
        Built by :func:`to_deepinv`.
        """

        def __init__(self, model: ForwardModel, noise_model=None, **kwargs):
            super().__init__(noise_model=noise_model, **kwargs)
            self.model = model

        def A(self, x, **kwargs):
            """``model(x)`` (deepinv keyword arguments are ignored)."""
            return self.model(x)

    class LinearForwardModelPhysics(LinearPhysics):
        """One of our linear ForwardModels as a ``deepinv.physics.LinearPhysics``.

        ``A(x) = model(x)``, ``A_adjoint(y) = model.adjoint(y)``, ``A_dagger(y) = model.pseudo_inverse(y)``
        (the minimum-norm least-squares solution ``A^+ y``, exact where the model has a closed form).
        Built by :func:`to_deepinv`.
        """

        def __init__(self, model: ForwardModel, noise_model=None, **kwargs):
            kwargs.setdefault("device", _module_device(model))
            if noise_model is not None:
                kwargs["noise_model"] = noise_model
            super().__init__(img_size=tuple(model.input_shape), **kwargs)
            self.model = model

        def A(self, x, **kwargs):
            """``model(x)``."""
            return self.model(x)

        def A_adjoint(self, y, **kwargs):
            """``model.adjoint(y)``."""
            return self.model.adjoint(y)

        def A_dagger(self, y, **kwargs):
            """``model.pseudo_inverse(y)`` (deepinv's solver arguments are ignored)."""
            return self.model.pseudo_inverse(y)

    for cls in (ForwardModelPhysics, LinearForwardModelPhysics):
        cls.__qualname__ = cls.__name__  # importable (and picklable) as forward_models.adapters.<name>
        _EXPORTED[cls.__name__] = cls
    return _EXPORTED


_EXPORTED: dict = {}


def __getattr__(name):
    """``ForwardModelPhysics`` and ``LinearForwardModelPhysics`` are built on first access (PEP 562)."""
    if name in ("ForwardModelPhysics", "LinearForwardModelPhysics"):
        return _export_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_deepinv(model: ForwardModel, noise_model=None, **kwargs) -> deepinv.physics.Physics:
    """Export a ForwardModel to deepinv: a ``LinearPhysics`` if ``model.linear``, a ``Physics`` otherwise.

    ``noise_model`` (a deepinv noise model, default none) and ``kwargs`` go to the deepinv constructor.
    The model stays a submodule of the returned physics, so ``physics.to(device)`` moves it.

    Example::

        import torch
        from forward_models import MatrixOperator
        from forward_models.adapters import to_deepinv
        physics = to_deepinv(MatrixOperator(torch.randn(3, 5)))
        y = physics.A(torch.randn(2, 5)); x = physics.A_adjoint(y)
    """
    if not isinstance(model, ForwardModel):
        raise ForwardModelError(f"to_deepinv needs one of our ForwardModels, got {type(model).__name__}")
    classes = _export_classes()
    cls = classes["LinearForwardModelPhysics"] if model.linear else classes["ForwardModelPhysics"]
    return cls(model, noise_model=noise_model, **kwargs)


def _callable_name(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


class BlackBoxForwardModel(ForwardModel):
    """A numpy-in, numpy-out simulator as a ForwardModel (``differentiable = False``, not linear).

    ``fn`` maps one sample ``x`` of shape ``input_shape`` to ``y`` of shape ``output_shape``
    (``batched=False``, called once per sample) or a batch ``(B, *input_shape)`` to
    ``(B, *output_shape)`` (``batched=True``). Inputs reach ``fn`` as float arrays on the CPU
    (detached: no gradient flows through), outputs come back in the input's dtype and device.
    A wrong output shape, a non-numeric output or NaN/Inf raise ``ValueError`` naming the callable.

    Example::

        import numpy as np, torch
        from forward_models.adapters import BlackBoxForwardModel
        op = BlackBoxForwardModel(lambda th: np.exp(-th[0] * np.arange(4.0)), (1,), (4,))
        y = op(torch.rand(3, 1))                   # (3, 4), fn called three times
    """

    linear = False
    differentiable = False

    def __init__(self, fn, input_shape, output_shape, *, batched: bool = False):
        super().__init__()
        if not callable(fn):
            raise ForwardModelError(f"BlackBoxForwardModel needs a callable, got {type(fn).__name__}")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = tuple(int(s) for s in output_shape)
        if any(s < 1 for s in self.input_shape + self.output_shape):
            raise ForwardModelError(f"BlackBoxForwardModel: shapes must be positive, got input {self.input_shape} "
                                    f"and output {self.output_shape}")
        self.fn, self.batched = fn, bool(batched)

    def _as_array(self, out, want: tuple, what: str) -> np.ndarray:
        name = _callable_name(self.fn)
        try:
            arr = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError):
            raise ForwardModelError(f"BlackBoxForwardModel({name}) returned a non-numeric {type(out).__name__} for "
                                    f"{what}") from None
        if arr.shape != want:
            raise ForwardModelError(f"BlackBoxForwardModel({name}) returned shape {arr.shape} for {what}, expected "
                                    f"{want}")
        if not np.isfinite(arr).all():
            raise ForwardModelError(f"BlackBoxForwardModel({name}) returned NaN or Inf for {what}")
        return arr

    def forward(self, x):
        """``fn`` applied to the batch (or to each sample), as a tensor like ``x``."""
        arr = x.detach().cpu().numpy()
        B = arr.shape[0]
        if self.batched:
            out = self._as_array(self.fn(arr), (B, *self.output_shape), f"a batch of {B}")
        else:
            out = np.stack([self._as_array(self.fn(arr[i]), self.output_shape, f"sample {i}") for i in range(B)]) \
                if B else np.zeros((0, *self.output_shape))
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)

    def config(self):
        """Configuration: the callable's name and the batching flag (the callable itself is not serialised)."""
        return {**super().config(), "callable": _callable_name(self.fn), "batched": self.batched}


# ----------------------------------------------------------------------------- registry examples


def _example_deepinv(seed: int) -> DeepInvForwardModel:
    """deepinv ``Blur`` with a seeded positive 3 x 3 filter, circular padding, on (1, 8, 8) images."""
    g = torch.Generator().manual_seed(seed)
    w = 1.0 + torch.rand(1, 1, 3, 3, generator=g)
    w[..., 1, 1] += 4.0  # a strong centre keeps the blur well conditioned (the pseudo-inverse test uses CG)
    return DeepInvForwardModel(_blur(w / w.sum()), (1, 8, 8))


def _benchmark_deepinv() -> DeepInvForwardModel:
    """deepinv ``Blur``, Gaussian filter (standard deviation 2 pixels), circular padding, on (1, 64, 64) images."""
    from deepinv.physics.functional.blur import gaussian_blur

    return DeepInvForwardModel(_blur(gaussian_blur(sigma=(2.0, 2.0))), (1, 64, 64))


def _blur(filter):
    from deepinv.physics import Blur

    return Blur(filter=filter, padding="circular")


def damped_oscillator(theta: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
    """Toy black-box simulator: ``y(t) = exp(a) exp(-exp(b) t) cos(omega t)`` at ``t = 0, 1/3, ..., 3``.

    ``theta = (a, b, omega)``: log-amplitude, log-damping rate, angular frequency. Plain numpy.
    """
    times = np.linspace(0.0, 3.0, 10) if times is None else times
    a, b, omega = (float(v) for v in theta)
    return math.exp(a) * np.exp(-math.exp(b) * times) * np.cos(omega * times)


def _example_blackbox(seed: int) -> BlackBoxForwardModel:
    """The damped oscillator, called per sample: (3,) -> (10,)."""
    return BlackBoxForwardModel(damped_oscillator, (3,), (10,))


REGISTRY_ENTRIES = {
    "deepinv": {"cls": DeepInvForwardModel, "example": _example_deepinv, "benchmark": _benchmark_deepinv},
    "blackbox": {"cls": BlackBoxForwardModel, "example": _example_blackbox, "benchmark": lambda: _example_blackbox(0)},
}
