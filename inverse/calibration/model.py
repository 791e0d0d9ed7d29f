"""The calibration-model contract: a few named physical parameters -> noise-free observations.

A :class:`CalibrationModel` maps a dictionary of scalar parameters ``theta`` to predicted
observations ``G(theta)`` at a fixed design (times, positions, offsets) that the model holds.
With additive Gaussian noise the likelihood is

    log p(y | theta, sigma) = sum_i log N(y_i; G(theta)_i, sigma^2)
                            = -||y - G(theta)||^2 / (2 sigma^2) - n log sigma - (n / 2) log(2 pi),

which :meth:`CalibrationModel.log_likelihood` evaluates in JAX (models written in torch override it
through :mod:`inverse.calibration.bridge`). A model also carries default priors, a default truth
for simulated data, and the configuration that rebuilds it from a data file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping

import numpyro

numpyro.enable_x64()  # every calibration module imports this one first: float64 before any JAX array

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402

from inverse.errors import UserError

__all__ = ["CalibrationModel", "JaxModel"]


class CalibrationModel:
    """Base class: ``theta`` (dict of scalars) -> noise-free observations ``G(theta)`` of shape ``obs_shape``.

    Subclasses set ``name``, ``parameters`` (ordered names), ``obs_dims`` (dimension names of the
    observations) and ``sigma_scale`` (a typical noise standard deviation), and implement
    :meth:`predict` (JAX, differentiable), :meth:`default_priors`, :meth:`default_truth`,
    :meth:`coords` and :meth:`config` / :meth:`from_config`.

    Example: a straight line ``y = a + b t`` in a dozen lines::

        import jax.numpy as jnp, numpy as np, numpyro.distributions as dist
        from inverse.calibration.model import CalibrationModel

        class Line(CalibrationModel):
            name, parameters, obs_dims, sigma_scale = "line", ("a", "b"), ("time",), 0.1
            def __init__(self, times=np.linspace(0, 1, 10)):
                self.times = np.asarray(times, dtype=np.float64)
            def predict(self, theta):
                return theta["a"] + theta["b"] * jnp.asarray(self.times)
            def default_priors(self):
                return {"a": dist.Normal(0, 1), "b": dist.Normal(0, 1)}
            def default_truth(self):
                return {"a": 0.3, "b": -0.5}
            def coords(self):
                return {"time": self.times}
            def config(self):
                return {"times": self.times.tolist()}
    """

    name: str = "model"
    parameters: tuple[str, ...] = ()
    obs_dims: tuple[str, ...] = ()
    sigma_scale: float = 1.0
    #: whether vectorised chains (``chain_method="vectorized"``) may evaluate the model in one batch
    vectorizable: bool = True

    # ------------------------------------------------------------------------------ to implement
    def predict(self, theta: Mapping[str, jax.Array]) -> jax.Array:  # pragma: no cover
        """Noise-free observations ``G(theta)``, shape ``obs_shape`` (JAX, differentiable)."""
        raise NotImplementedError

    def default_priors(self) -> dict[str, dist.Distribution]:  # pragma: no cover
        """Default prior of every parameter (NumPyro distributions)."""
        raise NotImplementedError

    def default_truth(self) -> dict[str, float]:  # pragma: no cover
        """Parameter values used to simulate example data."""
        raise NotImplementedError

    def coords(self) -> dict[str, np.ndarray]:
        """Coordinate values along each of ``obs_dims`` (the design), in physical units."""
        return {}

    def constant_data(self) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Fixed arrays of the design besides the coordinates, ``name -> (dims, values)``."""
        return {}

    def config(self) -> dict:
        """JSON-serialisable constructor arguments (without the arrays of :meth:`constant_data`)."""
        return {}

    @classmethod
    def from_config(cls, config: dict, arrays: Mapping[str, np.ndarray] | None = None) -> CalibrationModel:
        """Rebuild the model from :meth:`config` and the arrays of :meth:`constant_data`."""
        return cls(**config, **dict(arrays or {}))

    #: coordinate name -> constructor argument it sets (a data file's coordinates define the design)
    coord_config: dict[str, str] = {}

    @classmethod
    def config_from_coords(cls, coords: Mapping[str, np.ndarray]) -> dict:
        """Constructor arguments read from a data file's coordinates (see :attr:`coord_config`)."""
        return {key: np.asarray(coords[dim], dtype=np.float64).tolist()
                for dim, key in cls.coord_config.items() if dim in coords}

    # ------------------------------------------------------------------------------ provided
    @property
    def obs_shape(self) -> tuple[int, ...] | None:
        """Shape of one observation array (from the coordinates), or None if unknown."""
        c = self.coords()
        if not self.obs_dims or any(d not in c for d in self.obs_dims):
            return None
        return tuple(len(c[d]) for d in self.obs_dims)

    def units(self) -> dict[str, str]:
        """Units of the parameters and coordinates (for files and plots); empty by default."""
        return {}

    def default_sigma_prior(self) -> dist.Distribution:
        """Prior of an unknown noise standard deviation: half-normal with scale ``5 sigma_scale``."""
        return dist.HalfNormal(5.0 * self.sigma_scale)

    def log_likelihood(self, theta: Mapping[str, jax.Array], y, sigma) -> jax.Array:
        """Gaussian ``log p(y | theta, sigma)`` (module docstring), a JAX scalar."""
        pred = self.predict(theta)
        return jnp.sum(dist.Normal(pred, sigma).log_prob(jnp.asarray(y)))

    def simulate(self, theta: Mapping[str, float], sigma: float, seed: int = 0) -> np.ndarray:
        """``G(theta) + sigma * e`` with ``e ~ N(0, I)`` from ``numpy.random.default_rng(seed)``."""
        missing = [p for p in self.parameters if p not in theta]
        if missing:
            raise UserError(f"{self.name}: missing parameter value(s) {', '.join(missing)}; "
                            f"the model has {', '.join(self.parameters)}")
        clean = np.asarray(self.predict({k: jnp.asarray(float(theta[k])) for k in self.parameters}),
                           dtype=np.float64)
        if not np.isfinite(clean).all():
            raise UserError(f"{self.name}: the model gives non-finite predictions at {dict(theta)}")
        return clean + float(sigma) * np.random.default_rng(int(seed)).standard_normal(clean.shape)

    def describe(self) -> str:
        """One line: name, parameters and observation shape."""
        return f"{self.name}: parameters {', '.join(self.parameters)}; observations {self.obs_shape}"

    def config_json(self) -> str:
        """:meth:`config` as a JSON string (stored in data and posterior files)."""
        return json.dumps(self.config(), sort_keys=True)


class JaxModel(CalibrationModel):
    """Any JAX function ``predict(theta: dict) -> array`` as a calibration model.

    ``parameters`` are the names the function reads from ``theta``; :func:`inverse.calibration.calibrate`
    builds one from a plain callable and the names of its priors.

    Example::

        import jax.numpy as jnp, numpy as np, numpyro.distributions as dist
        from inverse.calibration import calibrate
        t = np.linspace(0, 1, 20)
        y = 2.0 * np.exp(-3.0 * t) + 0.1 * np.random.default_rng(0).standard_normal(20)
        idata = calibrate(lambda th: th["a"] * jnp.exp(-th["k"] * t), y,
                          {"a": dist.Normal(1, 1), "k": dist.LogNormal(0, 1)}, sigma=0.1)
    """

    def __init__(self, predict: Callable[[Mapping[str, jax.Array]], jax.Array], parameters, *,
                 name: str = "custom", obs_shape: tuple[int, ...] | None = None, sigma_scale: float = 1.0):
        if not callable(predict):
            raise TypeError(f"the model must be callable (theta dict -> predictions), got {type(predict).__name__}")
        self._predict = predict
        self.parameters = tuple(parameters)
        self.name = str(name)
        self._obs_shape = None if obs_shape is None else tuple(int(s) for s in obs_shape)
        self.obs_dims = () if obs_shape is None else tuple(f"obs_dim_{i}" for i in range(len(obs_shape)))
        if not (math.isfinite(sigma_scale) and sigma_scale > 0):
            raise UserError(f"sigma_scale must be positive, got {sigma_scale}")
        self.sigma_scale = float(sigma_scale)

    @property
    def obs_shape(self):
        """The shape given at construction (None: any)."""
        return self._obs_shape

    def predict(self, theta):
        """The wrapped function."""
        return self._predict(theta)

    def default_priors(self):
        """None: a plain function has no default priors."""
        return {}

    def default_truth(self):
        """None: a plain function has no default truth."""
        return {}
