"""Seeded OpenFWI-like velocity models: layered, curved and faulted subsurfaces in m/s.

The four families follow OpenFWI's (Deng et al., "OpenFWI: Large-scale multi-structural benchmark
datasets for full waveform inversion", NeurIPS Datasets and Benchmarks 2022): ``FlatVel``,
``CurveVel``, ``FlatFault``, ``CurveFault``. A model is piecewise constant in ``K`` layers; cell
``(z, x)`` (``z`` the depth index) lies in layer

    k(z, x) = #{ j : z >= d_j(x) },        v(z, x) = v_{k(z, x)},

where ``d_1(x) <= ... <= d_{K-1}(x)`` are the interface depths (in cells) and ``v_0, ..., v_{K-1}`` the
layer velocities, drawn uniformly in ``v_range`` and sorted so that velocity increases with depth;
with probability ``p_inversion`` one adjacent pair is swapped (a low-velocity layer), hence
"mostly increasing". Flat interfaces are constant in ``x``; curved ones add to a constant depth
a smooth random curve ``a * sum_m c_m sin(2 pi f_m x / W + phi_m)`` (three sinusoids of at most two
cycles across the model, amplitude up to ``0.12 H``, the same curve for all interfaces of a model,
each scaled by its own factor; the interfaces are then made non-crossing by a running maximum).
A fault is a random dipping line ``z - z_0 = tan(theta) (x - x_0)`` (dip ``theta`` 30-80 degrees
to either side); the block on one side of it is displaced downwards by a throw ``t`` (5-20 % of
the depth), i.e. ``v(z, x) = v_unfaulted(z - t, x)`` there, the top layer extending upwards.

Everything is vectorised over the batch: 1,000 models of 70 x 70 take well under a second.
"""

from __future__ import annotations

import math

import torch

from forward_models.errors import ForwardModelError

__all__ = ["VELOCITY_FAMILIES", "velocity_models"]

#: the OpenFWI families this generator draws from
VELOCITY_FAMILIES = ("flat", "curved", "flat-fault", "curved-fault")


def _check_arguments(n, family, size, v_range, num_layers, p_inversion):
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ForwardModelError(f"velocity_models: the number of models n must be a positive integer, got {n!r}")
    if family not in VELOCITY_FAMILIES:
        raise ForwardModelError(f"velocity_models: unknown family {family!r}; known: {', '.join(VELOCITY_FAMILIES)}")
    if len(size) != 2 or any(int(s) != s or s < 2 for s in size):
        raise ForwardModelError(f"velocity_models: size must be two integers >= 2 (depth, width), got {tuple(size)}")
    lo, hi = (float(v) for v in v_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise ForwardModelError(f"velocity_models: v_range must be finite with 0 < low < high, got {tuple(v_range)}")
    k_lo, k_hi = (int(k) for k in num_layers)
    if not 1 <= k_lo <= k_hi:
        raise ForwardModelError("velocity_models: num_layers must be (low, high) with 1 <= low <= high, got "
                                f"{tuple(num_layers)}")
    if not 0.0 <= float(p_inversion) <= 1.0:
        raise ForwardModelError(f"velocity_models: p_inversion must lie in [0, 1], got {p_inversion}")


def _layer_velocities(n, k, kmax, lo, hi, p_inversion, g):
    """(n, kmax) velocities, the first ``k[i]`` of row i sorted ascending, one adjacent swap sometimes."""
    u = torch.rand(n, kmax, generator=g, dtype=torch.float64)
    idx = torch.arange(kmax)
    u = torch.where(idx < k[:, None], u, torch.full_like(u, 2.0)).sort(dim=1).values  # unused layers last
    v = lo + (hi - lo) * u.clamp_max(1.0)
    swap = (torch.rand(n, generator=g, dtype=torch.float64) < p_inversion) & (k >= 2)
    j = (torch.rand(n, generator=g, dtype=torch.float64) * (k - 1).clamp_min(1)).long()[:, None]
    perm = torch.where(swap[:, None] & (idx == j), j + 1, torch.where(swap[:, None] & (idx == j + 1), j, idx))
    return v.gather(1, perm)


def _interfaces(n, k, kmax, H, W, curved, g):
    """(n, kmax - 1, W) interface depths in cells, non-decreasing in the interface index."""
    m = max(kmax - 1, 1)
    base = 0.08 * H + 0.87 * H * torch.rand(n, m, generator=g, dtype=torch.float64)
    base = torch.where(torch.arange(m) < (k[:, None] - 1), base, torch.full_like(base, 10.0 * H)).sort(dim=1).values
    d = base[:, :, None].expand(n, m, W)
    if curved:
        x = torch.arange(W, dtype=torch.float64) / W
        freq = 0.3 + 1.7 * torch.rand(n, 3, 1, generator=g, dtype=torch.float64)
        phase = 2 * math.pi * torch.rand(n, 3, 1, generator=g, dtype=torch.float64)
        coef = torch.randn(n, 3, 1, generator=g, dtype=torch.float64)
        curve = (coef * torch.sin(2 * math.pi * freq * x + phase)).sum(1)  # (n, W)
        curve = curve / curve.abs().amax(1, keepdim=True).clamp_min(1e-12)
        amp = 0.12 * H * torch.rand(n, 1, 1, generator=g, dtype=torch.float64)
        scale = 0.5 + torch.rand(n, m, 1, generator=g, dtype=torch.float64)
        d = d + amp * scale * curve[:, None, :]
        d = torch.cummax(d, dim=1).values  # interfaces never cross
    return d[:, : kmax - 1]


def _fault_throw(n, H, W, g):
    """(n, H, W) vertical displacement in cells: the throw on one side of a dipping line, 0 on the other."""
    z0 = H * (0.3 + 0.4 * torch.rand(n, 1, 1, generator=g, dtype=torch.float64))
    x0 = W * (0.3 + 0.4 * torch.rand(n, 1, 1, generator=g, dtype=torch.float64))
    dip = math.radians(30) + math.radians(50) * torch.rand(n, 1, 1, generator=g, dtype=torch.float64)
    side = torch.where(torch.rand(n, 1, 1, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    throw = H * (0.05 + 0.15 * torch.rand(n, 1, 1, generator=g, dtype=torch.float64))
    z = torch.arange(H, dtype=torch.float64)[:, None]
    x = torch.arange(W, dtype=torch.float64)[None, :]
    # signed distance to the line through (x0, z0) dipping at `dip` towards `side`
    s = (z - z0) * torch.cos(dip) - side * (x - x0) * torch.sin(dip)
    return torch.where(s > 0, throw, torch.zeros_like(throw)).expand(n, H, W)


def velocity_models(n: int, family: str = "flat", size=(70, 70), seed: int = 0, *,
                    v_range=(1500.0, 4500.0), num_layers=(2, 5), p_inversion: float = 0.2,
                    dtype=torch.float32, device=None) -> torch.Tensor:
    """``n`` seeded OpenFWI-like velocity models, shape ``(n, 1, H, W)`` in m/s (``size = (H, W)``, depth first).

    ``family`` is one of ``"flat"``, ``"curved"``, ``"flat-fault"``, ``"curved-fault"`` (OpenFWI's
    FlatVel, CurveVel, FlatFault, CurveFault; see the module docstring for the construction).
    Each model has between ``num_layers[0]`` and ``num_layers[1]`` layers, velocities uniform in
    ``v_range`` (every value lies in ``[v_range[0], v_range[1])``), increasing with depth except for
    one swapped pair with probability ``p_inversion``. The same arguments give the same models.

    Example::

        from forward_models.generators.velocity import velocity_models
        v = velocity_models(8, "curved-fault", size=(70, 70), seed=1)   # (8, 1, 70, 70), m/s
    """
    _check_arguments(n, family, size, v_range, num_layers, p_inversion)
    H, W = int(size[0]), int(size[1])
    lo, hi = float(v_range[0]), float(v_range[1])
    k_lo, k_hi = int(num_layers[0]), int(num_layers[1])
    g = torch.Generator().manual_seed(int(seed))
    k = torch.randint(k_lo, k_hi + 1, (n,), generator=g)
    vel = _layer_velocities(n, k, k_hi, lo, hi, p_inversion, g)
    d = _interfaces(n, k, k_hi, H, W, family.startswith("curved"), g)
    z = torch.arange(H, dtype=torch.float64)[None, :, None].expand(n, H, W)
    if family.endswith("fault"):
        z = z - _fault_throw(n, H, W, g)
    layer = (z[:, None] >= d[:, :, None, :]).sum(1)  # (n, H, W): interfaces above each cell
    v = vel.gather(1, layer.reshape(n, -1)).reshape(n, 1, H, W)
    return v.to(dtype=dtype, device=device)
