"""Layered earth: reflection traveltimes of flat layers with unknown velocities and thicknesses.

``K`` horizontal layers with P-wave velocities ``v_i`` (m/s) and thicknesses ``h_i`` (m); a source
and a receiver at the surface ``x`` apart record the reflection from the base of layer ``k``. Along
the ray (Snell's law) the horizontal slowness ``p`` is constant, and the ray reaches offset

    X_k(p) = 2 sum_{i <= k} h_i p v_i / sqrt(1 - p^2 v_i^2),      0 <= p < 1 / max_{i <= k} v_i,

which increases from 0 to infinity, so ``X_k(p) = x`` has one root, found by bisection. The
two-way traveltime is the tau-p form (Diebold and Stoffa 1981, Geophysics 46, 238-254)

    t_k(x) = p x + 2 sum_{i <= k} h_i sqrt(1 / v_i^2 - p^2),

which is stationary in ``p`` at the root (``dt/dp = x - X_k(p) = 0``, Fermat's principle). Hence the
gradient with respect to ``(v, h)`` at fixed ``p`` is the exact gradient (envelope theorem): the
bisection runs under ``stop_gradient`` and costs no derivative. At zero offset ``p = 0`` and
``t_k = 2 sum h_i / v_i`` (the vertical two-way time). Compared with the hyperbolic (Dix) short-spread
approximation ``t^2 = t0^2 + x^2 / v_rms^2`` (Dix 1955, Geophysics 20, 68-86) this is exact for any
offset. Observations: ``t_k(x_j)`` for every reflector ``k`` and offset ``x_j``, array ``(reflector, offset)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from inverse.calibration.model import CalibrationModel
from inverse.errors import UserError

__all__ = ["LayeredEarth", "reflection_traveltimes"]

_OFFSETS = tuple(250.0 * i for i in range(9))  # 0, 250, ..., 2000 m
_BISECTIONS = 64  # halves the slowness bracket to ~1e-19 of 1/v_max: below float64 resolution


def reflection_traveltimes(velocities, thicknesses, offsets) -> jax.Array:
    """Exact two-way reflection traveltimes ``(K, J)`` of ``K`` flat layers at ``J`` offsets (module docstring).

    ``velocities`` and ``thicknesses`` are ``(K,)`` JAX arrays (m/s, m), ``offsets`` ``(J,)`` (m).
    Differentiable in velocities and thicknesses (exact gradient by the envelope theorem).

    Example::

        import jax.numpy as jnp
        from inverse.calibration.models.layered_earth import reflection_traveltimes
        t = reflection_traveltimes(jnp.array([2000.0, 3000.0]), jnp.array([500.0, 600.0]),
                                   jnp.array([0.0, 1000.0]))    # t[0, 0] = 0.5 s
    """
    v = jnp.asarray(velocities)
    h = jnp.asarray(thicknesses)
    x = jnp.asarray(offsets)
    K = v.shape[0]
    above = jnp.tril(jnp.ones((K, K), dtype=bool))  # above[k, i]: layer i lies above the base of layer k
    v_s, h_s = jax.lax.stop_gradient(v), jax.lax.stop_gradient(h)
    vmax = jnp.max(jnp.where(above, v_s[None], 0.0), axis=1)  # (K,)

    def offset_of(p):  # X_k(p) for p (K, J)
        q = jnp.where(above[:, None, :], p[..., None] * v_s, 0.0)  # (K, J, I), inactive layers -> 0
        return 2.0 * jnp.sum(h_s * q / jnp.sqrt(1.0 - q**2), axis=-1)

    def bisect(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        past = offset_of(mid) > x[None]
        return jnp.where(past, lo, mid), jnp.where(past, mid, hi)

    lo = jnp.zeros((K, x.shape[0]), dtype=v.dtype)
    hi = jnp.broadcast_to((1.0 / vmax)[:, None], lo.shape)
    lo, hi = jax.lax.fori_loop(0, _BISECTIONS, bisect, (lo, hi))
    p = jax.lax.stop_gradient(lo)  # X(lo) <= x: a valid slowness on the safe side of the singularity
    # vertical slowness sqrt(1/v^2 - p^2) of the active layers; inactive ones get a harmless 1 (masked below)
    arg = jnp.where(above[:, None, :], 1.0 / v**2 - p[..., None] ** 2, 1.0)
    eta = jnp.where(above[:, None, :], jnp.sqrt(arg), 0.0)
    return p * x[None] + 2.0 * jnp.sum(h * eta, axis=-1)


class LayeredEarth(CalibrationModel):
    """Velocities ``v1..vK`` (m/s) and thicknesses ``h1..hK`` (m) -> reflection traveltimes ``(reflector, offset)`` (s).

    Parameters
    ----------
    num_layers : K (default 3)
    offsets : source-receiver offsets (m), default 0, 250, ..., 2000
    velocity_range, thickness_range : bounds of the default uniform priors

    Default truth: v = (1800, 2500, 3200) m/s, h = (300, 400, 500) m (a compacting sedimentary
    sequence); default priors ``v_i ~ Uniform(1400, 5000)``, ``h_i ~ Uniform(50, 1000)``;
    noise 4 ms (a typical picking error).

    Example::

        from inverse.calibration import calibrate
        from inverse.calibration.models import LayeredEarth
        m = LayeredEarth()
        y = m.simulate(m.default_truth(), sigma=0.004, seed=0)      # (3, 9) seconds
        idata = calibrate(m, y, sigma=0.004, num_chains=2)
    """

    name = "layered-earth"
    obs_dims = ("reflector", "offset")
    sigma_scale = 0.004
    coord_config = {"offset": "offsets"}

    @classmethod
    def config_from_coords(cls, coords):
        """Offsets, and the number of layers from the reflector coordinate."""
        out = super().config_from_coords(coords)
        if "reflector" in coords:
            out["num_layers"] = int(len(coords["reflector"]))
        return out

    def __init__(self, num_layers: int = 3, offsets=_OFFSETS,
                 velocity_range=(1400.0, 5000.0), thickness_range=(50.0, 1000.0)):
        if int(num_layers) != num_layers or not 1 <= num_layers <= 10:
            raise UserError(f"num_layers must be an integer from 1 to 10, got {num_layers}")
        x = np.asarray(offsets, dtype=np.float64).reshape(-1)
        if x.size < 2 or not np.isfinite(x).all() or (x < 0).any():
            raise UserError(f"offsets must be at least two finite non-negative distances (m), got {offsets!r}")
        for what, r in (("velocity_range", velocity_range), ("thickness_range", thickness_range)):
            if len(r) != 2 or not (0 < float(r[0]) < float(r[1]) < np.inf):
                raise UserError(f"{what} must be (low, high) with 0 < low < high, got {r!r}")
        self.num_layers = int(num_layers)
        self.offsets = x
        self.velocity_range = (float(velocity_range[0]), float(velocity_range[1]))
        self.thickness_range = (float(thickness_range[0]), float(thickness_range[1]))
        k = self.num_layers
        self.parameters = tuple(f"v{i + 1}" for i in range(k)) + tuple(f"h{i + 1}" for i in range(k))

    def predict(self, theta):
        """Exact reflection traveltimes (:func:`reflection_traveltimes`)."""
        k = self.num_layers
        v = jnp.stack([theta[f"v{i + 1}"] for i in range(k)])
        h = jnp.stack([theta[f"h{i + 1}"] for i in range(k)])
        return reflection_traveltimes(v, h, jnp.asarray(self.offsets))

    def default_priors(self):
        """Uniform velocities and thicknesses over the configured ranges."""
        pv = {f"v{i + 1}": dist.Uniform(*self.velocity_range) for i in range(self.num_layers)}
        ph = {f"h{i + 1}": dist.Uniform(*self.thickness_range) for i in range(self.num_layers)}
        return {**pv, **ph}

    def default_truth(self):
        """Velocities increasing with depth by 700 m/s from 1800 m/s, thicknesses from 300 m by 100 m."""
        k = self.num_layers
        return {**{f"v{i + 1}": 1800.0 + 700.0 * i for i in range(k)},
                **{f"h{i + 1}": 300.0 + 100.0 * i for i in range(k)}}

    def coords(self):
        """Reflector index (1 = base of the first layer) and offsets (m)."""
        return {"reflector": np.arange(1, self.num_layers + 1), "offset": self.offsets}

    def units(self):
        """SI units."""
        return {**{f"v{i + 1}": "m/s" for i in range(self.num_layers)},
                **{f"h{i + 1}": "m" for i in range(self.num_layers)}, "offset": "m", "y": "s"}

    def config(self):
        """Constructor arguments."""
        return {"num_layers": self.num_layers, "offsets": self.offsets.tolist(),
                "velocity_range": list(self.velocity_range), "thickness_range": list(self.thickness_range)}
