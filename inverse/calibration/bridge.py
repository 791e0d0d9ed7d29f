"""The torch bridge: calibrate any differentiable torch :class:`forward_models.ForwardModel` with NumPyro.

NUTS needs ``U(z)`` and ``grad U(z)``. For a model written in torch, one ``jax.pure_callback`` asks
torch for both at once: the value by a forward pass, the gradient by autograd (float64), and
``jax.custom_vjp`` hands that gradient to JAX's reverse mode, so JAX never differentiates through
the callback. With ``vmap_method="broadcast_all"`` a ``vmap`` over chains (NumPyro's
``chain_method="vectorized"``) reaches the callback as one batch ``(C, p)``: one torch call per
leapfrog step for all chains. A call that is not differentiated (the gradient-free kernels
``calibrate(..., kernel="ess")``, the primal of a ``jax.grad``) uses a cheaper value-only callback under
``torch.no_grad``; that is all a forward model without autograd (``differentiable = False``) is asked for.

For a forward model ``F`` on the parameter vector ``theta`` (input shape ``(p,)``) and data ``y``,
:class:`TorchModel` bridges the misfit

    Phi(theta) = ||y - F(theta)||^2 / 2,     d Phi / d theta = -J_F(theta)^T (y - F(theta)),

and forms the Gaussian log-likelihood in JAX, ``-Phi / sigma^2 - n log sigma - (n / 2) log 2 pi``,
so an unknown noise level costs no extra torch work. The batch rows must be independent (the
forward-model contract's batch consistency): the gradient of ``sum_b Phi(theta_b)`` is then
``grad Phi`` row by row.

References: JAX documentation, "External callbacks" (``pure_callback``, ``vmap_method``) and
"Custom derivative rules" (``custom_vjp``); Phan, Pradhan and Jankowiak 2019 (NumPyro).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import torch

from forward_models.base import ForwardModel
from inverse.calibration.model import CalibrationModel
from inverse.errors import UserError

__all__ = ["TorchPotential", "TorchModel"]


class TorchPotential:
    """A scalar torch function ``f: R^p -> R`` as a differentiable JAX function (one callback for value and gradient).

    Parameters
    ----------
    fn : torch callable mapping a batch ``(B, p)`` (float64) to ``(B,)``; rows must be independent
    dim : p
    vmap_method : how ``jax.vmap`` reaches the callback; ``"broadcast_all"`` (default) passes the whole
        batch in one call, ``"sequential"`` one call per batch element
    device : torch device of the computation (default: CPU)
    differentiable : False for a ``fn`` without autograd: asking JAX for its gradient then raises a
        :class:`~inverse.errors.UserError` when the gradient is traced

    ``calls`` and ``evaluations`` count callback invocations and evaluated rows (value and gradient
    calls alike), ``gradient_calls`` the invocations that also computed a gradient. Rows with NaN or
    Inf entries (a diverging trajectory) are not sent to torch: their value is ``+inf`` (zero density)
    and their gradient zero, which NUTS reads as a divergence.

    Example::

        import jax, jax.numpy as jnp, torch
        from inverse.calibration.bridge import TorchPotential
        f = TorchPotential(lambda z: (z ** 2).sum(1), dim=3)
        jax.grad(f)(jnp.ones(3))                         # [2., 2., 2.] from torch autograd
        jax.vmap(jax.value_and_grad(f))(jnp.ones((4, 3)))  # one torch call for the 4 rows
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], dim: int, *,
                 vmap_method: str = "broadcast_all", device=None, differentiable: bool = True):
        if not callable(fn):
            raise TypeError(f"fn must be a torch callable, got {type(fn).__name__}")
        if int(dim) != dim or dim < 1:
            raise UserError(f"dim must be a positive integer, got {dim}")
        self.fn, self.dim, self.vmap_method = fn, int(dim), vmap_method
        self.differentiable = bool(differentiable)
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.calls = self.evaluations = self.gradient_calls = 0
        self._f = self._build()

    def reset_counters(self) -> None:
        """Set the call counters to zero."""
        self.calls = self.evaluations = self.gradient_calls = 0

    # ------------------------------------------------------------------------- host side (torch)
    def _batch(self, z) -> tuple[torch.Tensor, np.ndarray]:
        z = np.array(z, dtype=np.float64).reshape(-1, self.dim)  # a writable copy, rows = batch elements
        finite = np.isfinite(z).all(axis=1)
        self.calls += 1
        self.evaluations += int(finite.sum())
        return torch.from_numpy(z[finite]).to(self.device), finite

    def _value(self, z) -> np.ndarray:
        shape = np.shape(z)[:-1]
        t, finite = self._batch(z)
        v = np.full(finite.shape, np.inf)  # a non-finite point (a diverging trajectory) has zero density
        if t.shape[0]:
            with torch.no_grad():
                v[finite] = self.fn(t).detach().to("cpu", torch.float64).numpy()
        return v.reshape(shape)

    def _value_and_grad(self, z) -> tuple[np.ndarray, np.ndarray]:
        shape = np.shape(z)[:-1]
        t, finite = self._batch(z)
        self.gradient_calls += 1
        v, g = np.full(finite.shape, np.inf), np.zeros((finite.size, self.dim))
        if t.shape[0]:
            t.requires_grad_(True)
            with torch.enable_grad():
                out = self.fn(t)
                (grad,) = torch.autograd.grad(out.sum(), t)
            v[finite] = out.detach().to("cpu", torch.float64).numpy()
            g[finite] = grad.detach().to("cpu", torch.float64).numpy()
        return v.reshape(shape), g.reshape(shape + (self.dim,))

    # ------------------------------------------------------------------------- device side (JAX)
    def _build(self):
        vm = self.vmap_method

        def shapes(z):
            return jax.ShapeDtypeStruct(z.shape[:-1], jnp.float64), jax.ShapeDtypeStruct(z.shape, jnp.float64)

        @jax.custom_vjp
        def f(z):
            return jax.pure_callback(self._value, shapes(z)[0], z, vmap_method=vm)

        def f_fwd(z):
            if not self.differentiable:
                raise UserError("this torch function is not differentiable: NUTS and the Laplace start need "
                                "gradients (use calibrate(..., kernel='ess'))")
            return jax.pure_callback(self._value_and_grad, shapes(z), z, vmap_method=vm)

        def f_bwd(grad, cotangent):
            return (cotangent[..., None] * grad,)

        f.defvjp(f_fwd, f_bwd)
        return f

    def __call__(self, z) -> jax.Array:
        """``f(z)`` for ``z`` of shape ``(p,)`` (a scalar); differentiable, vmappable."""
        z = jnp.asarray(z, dtype=jnp.float64)
        if z.shape != (self.dim,):
            raise UserError(f"TorchPotential expects a vector of shape ({self.dim},), got {z.shape}")
        return self._f(z)


class TorchModel(CalibrationModel):
    """A torch forward model on a parameter vector, as a calibration model.

    ``forward_model`` maps ``(B, p)`` parameter vectors (in the order of ``parameters``, physical
    units, float64) to noise-free observations ``(B, *output_shape)``. The Gaussian log-likelihood goes
    through :class:`TorchPotential` on the misfit (module docstring).

    Parameters
    ----------
    forward_model : ForwardModel with ``input_shape == (p,)``; with ``differentiable = False`` only the
        gradient-free kernels (``calibrate(..., kernel="ess")``) can sample it
    parameters : the p parameter names
    priors : default priors (name -> NumPyro distribution); ``calibrate`` may override them
    truth : default parameter values for simulated data
    name, obs_dims, coords, sigma_scale : as for :class:`~inverse.calibration.model.CalibrationModel`
    vmap_method : passed to :class:`TorchPotential`

    Example::

        import numpyro.distributions as dist
        from inverse.calibration import calibrate
        from inverse.calibration.bridge import TorchModel
        from inverse.calibration.models.mri_t2 import T2RelaxationTorch
        m = TorchModel(T2RelaxationTorch(), ("S0", "T2"),
                       priors={"S0": dist.LogNormal(0, 0.5), "T2": dist.LogNormal(4.4, 0.5)})
        y = m.simulate({"S0": 1.0, "T2": 80.0}, sigma=0.02, seed=0)
        idata = calibrate(m, y, sigma=0.02)      # 4 vectorised chains: one torch batch of 4 per step
    """

    def __init__(self, forward_model: ForwardModel, parameters, *, priors: Mapping | None = None,
                 truth: Mapping | None = None, name: str = "torch", obs_dims=None, coords=None,
                 sigma_scale: float = 1.0, vmap_method: str = "broadcast_all"):
        if not isinstance(forward_model, ForwardModel):
            raise TypeError(f"forward_model must be a forward_models.ForwardModel, got {type(forward_model).__name__}")
        #: False for a black box: calibrate() then refuses NUTS and asks for kernel="ess"
        self.differentiable = bool(forward_model.differentiable)
        self.parameters = tuple(parameters)
        if tuple(forward_model.input_shape) != (len(self.parameters),):
            raise UserError(f"{type(forward_model).__name__} takes inputs of shape {tuple(forward_model.input_shape)}, "
                            f"but {len(self.parameters)} parameter names were given ({', '.join(self.parameters)})")
        if not (math.isfinite(sigma_scale) and sigma_scale > 0):
            raise UserError(f"sigma_scale must be positive, got {sigma_scale}")
        self.forward_model = forward_model
        self.name = str(name)
        self.sigma_scale = float(sigma_scale)
        out = tuple(forward_model.output_shape)
        self.obs_dims = tuple(obs_dims) if obs_dims is not None else tuple(f"obs_dim_{i}" for i in range(len(out)))
        if len(self.obs_dims) != len(out):
            raise UserError(f"obs_dims {self.obs_dims} do not match the output shape {out}")
        self._coords = {d: np.asarray(c) for d, c in (coords or {}).items()}
        self._priors = dict(priors or {})
        self._truth = dict(truth or {})
        self.vmap_method = vmap_method
        self._potentials: dict[str, TorchPotential] = {}

    @property
    def obs_shape(self):
        """The forward model's output shape."""
        return tuple(self.forward_model.output_shape)

    def coords(self):
        """Coordinates given at construction."""
        return dict(self._coords)

    def default_priors(self):
        """Priors given at construction."""
        return dict(self._priors)

    def default_truth(self):
        """Truth given at construction."""
        return dict(self._truth)

    def _device_dtype(self):
        t = next(iter(list(self.forward_model.buffers()) + list(self.forward_model.parameters())), None)
        return (torch.device("cpu") if t is None else t.device), torch.float64

    def misfit(self, y) -> TorchPotential:
        """The bridged ``Phi(theta) = ||y - F(theta)||^2 / 2`` for data ``y`` (cached per data array)."""
        y = np.asarray(y, dtype=np.float64)
        if y.shape != self.obs_shape:
            raise UserError(f"the data have shape {y.shape}, but {self.name} produces {self.obs_shape}")
        key = hashlib.sha1(y.tobytes()).hexdigest()
        if key not in self._potentials:
            device, dtype = self._device_dtype()
            y_t = torch.as_tensor(y, device=device, dtype=dtype)
            fm = self.forward_model

            def phi(theta: torch.Tensor) -> torch.Tensor:
                r = (fm(theta) - y_t).reshape(theta.shape[0], -1)
                return 0.5 * (r * r).sum(1)

            self._potentials[key] = TorchPotential(phi, len(self.parameters), vmap_method=self.vmap_method,
                                                   device=device, differentiable=self.differentiable)
        return self._potentials[key]

    def log_likelihood(self, theta, y, sigma):
        """Gaussian log-likelihood from the bridged misfit (module docstring). ``y`` must be concrete."""
        try:
            y = np.asarray(y, dtype=np.float64)
        except jax.errors.TracerArrayConversionError:
            raise TypeError("TorchModel needs the data as a concrete array, not a traced JAX value") from None
        z = jnp.stack([jnp.asarray(theta[p], dtype=jnp.float64) for p in self.parameters])
        n = y.size
        return -self.misfit(y)(z) / sigma**2 - n * jnp.log(sigma) - 0.5 * n * math.log(2.0 * math.pi)

    def predict(self, theta):
        """``F(theta)`` through a value-only callback (not differentiable; use :meth:`log_likelihood`)."""
        device, dtype = self._device_dtype()

        def host(z):
            z = np.array(z, dtype=np.float64)  # a writable copy for torch
            with torch.no_grad():
                out = self.forward_model(torch.from_numpy(z.reshape(-1, len(self.parameters))).to(device, dtype))
            return out.to("cpu", torch.float64).numpy().reshape(z.shape[:-1] + self.obs_shape)

        z = jnp.stack([jnp.asarray(theta[p], dtype=jnp.float64) for p in self.parameters])
        return jax.pure_callback(host, jax.ShapeDtypeStruct(self.obs_shape, jnp.float64), z,
                                 vmap_method=self.vmap_method)

    @property
    def evaluations(self) -> int:
        """Torch forward evaluations (rows) made through the bridge so far."""
        return sum(p.evaluations for p in self._potentials.values())

    def config(self):
        """The forward model's configuration."""
        return {"forward_model": self.forward_model.config(), "parameters": list(self.parameters)}
