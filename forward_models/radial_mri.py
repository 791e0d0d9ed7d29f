"""Radial (non-Cartesian) MRI: k-space sampled along spokes through the centre, single- and multi-coil.

Maths. A radial acquisition measures the Fourier transform of the transverse magnetisation ``x`` at
the non-uniform points ``k_j`` of ``S`` spokes, ``n`` samples each (Lauterbur, Nature 242:190, 1973;
Block, Uecker & Frahm, MRM 57:1086, 2007):

    single coil:  ``y_j = (1 / sqrt(H W)) sum_r x(r) exp(-i k_j . r)``
    multi coil:   ``y_{c,j} = (1 / sqrt(H W)) sum_r S_c(r) x(r) exp(-i k_j . r)``,  c = 1..C

with ``r = (row - H // 2, column - W // 2)`` the centred pixel position (the centre of
:func:`forward_models.mri.fft2c`, so on Cartesian points ``k = 2 pi m / N`` this is the centred
orthonormal DFT) and ``k`` in radians per pixel, ``(k_row, k_col) = rho (sin theta, cos theta)``:

    spoke angles   golden: ``theta_s = s pi / phi`` (111.25 degrees, ``phi`` the golden ratio; Winkelmann
                   et al., IEEE TMI 26:68, 2007), uniform: ``theta_s = pi s / S``, or given;
    readout        ``rho_t = (t - n / 2) 2 pi / n``, ``t = 0 .. n - 1``, covering [-pi, pi)
                   (``n = 2 N``: the usual two-fold readout oversampling).

The adjoint is ``A^H y = (1 / sqrt(H W)) sum_j y_j exp(+i k_j . r)`` (and ``sum_c conj(S_c) ...``).

Engine. The non-uniform FFT (type 2 forward, type 1 adjoint) of FINUFFT (Barnett, Magland & af Klinteberg,
SIAM J. Sci. Comput. 41:C479, 2019) at tolerance ``1e-12`` in float64 and ``1e-6`` in float32; each
agrees with the direct sum to that tolerance, so ``<A x, y> = <x, A^H y>`` holds to it. FINUFFT measured
faster than torchkbnufft here (``docs/benchmarks/components.md``); ``engine="torchkbnufft"`` (Kaiser-Bessel
interpolation on a twice-oversampled grid, Fessler & Sutton, IEEE TSP 51:560, 2003; Muckley et al. 2020)
runs on GPUs without a copy to the CPU, its adjoint the exact transpose of its forward map but both
~1e-3 from the direct sum. Autograd: the backward of ``A`` is ``A^H`` and vice versa (double backward works).

Layout (as :mod:`forward_models.mri`): complex arrays are real tensors with a leading axis of length 2
holding (real, imaginary).

    image            ``(2, H, W)``, or ``(1, H, W)`` with ``real_image=True`` (the imaginary part is 0)
    k-space          ``(2, S, n)`` single coil, ``(2, C, S, n)`` multi-coil (spoke, readout sample)
    coil maps        ``(2, C, H, W)`` (:func:`forward_models.coils.synthetic_coil_maps`)

With ``real_image=True`` the operator is ``x -> A [x; 0]`` and its adjoint ``Re(A^H y)``.

Gridding (the zero-filled baseline). Density-compensated adjoint with the radial (ramp) weights
``w_t = |rho_t| d_rho d_theta`` (``d_rho = 2 pi / n``, ``d_theta = pi / S``; the centre sample, on every
spoke, gets ``d_rho^2 d_theta / 4``, its share of the central disc): the polar quadrature of the inverse
Fourier integral, ``x ~ (H W / 4 pi^2) A^H (w y)`` (Jackson et al., IEEE TMI 10:473, 1991), coil-combined
by ``sum_c conj(S_c) x_c / sum_c |S_c|^2``. Exact in the limit of dense uniform spokes for images band-limited
to the disc ``|k| < pi``; streaks with few spokes.

Example::

    from forward_models.radial_mri import RadialMRI
    op = RadialMRI(64, spokes=32)                 # golden angle, 128 samples per spoke
    x = op.example_input(1)                       # (1, 2, 64, 64) float64
    y = op(x)                                     # (1, 2, 32, 128)
    x_grid = op.gridding(y)                       # (1, 2, 64, 64)
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from forward_models.base import ForwardModel, check_batch
from forward_models.coils import synthetic_coil_maps
from forward_models.errors import ForwardModelError, integer_at_least, number_in

__all__ = ["RadialMRI", "radial_trajectory", "radial_density", "ENGINES"]

ENGINES = ("finufft", "torchkbnufft")
_TRAJECTORIES = ("golden", "uniform")
_GOLDEN_ANGLE = math.pi * 2 / (1 + math.sqrt(5))  # pi / phi


def radial_trajectory(spokes: int, samples: int, kind: str = "golden", angles=None) -> torch.Tensor:
    """k-space points ``(2, spokes, samples)`` (``k_row, k_col`` in radians per pixel, float64) of radial spokes.

    ``kind``: "golden" (``theta_s = s pi / phi``) or "uniform" (``theta_s = pi s / spokes``); ``angles``
    (degrees, one per spoke) overrides both. Readout ``rho_t = (t - samples / 2) 2 pi / samples``.
    """
    if angles is not None:
        theta = torch.deg2rad(torch.as_tensor(angles, dtype=torch.float64).reshape(-1))
    elif kind == "golden":
        theta = torch.arange(spokes, dtype=torch.float64) * _GOLDEN_ANGLE
    elif kind == "uniform":
        theta = torch.arange(spokes, dtype=torch.float64) * (math.pi / spokes)
    else:
        raise ForwardModelError(f"unknown radial trajectory {kind!r}; known: {', '.join(_TRAJECTORIES)}")
    rho = (torch.arange(samples, dtype=torch.float64) - samples // 2) * (2 * math.pi / samples)
    return torch.stack([rho[None, :] * torch.sin(theta)[:, None], rho[None, :] * torch.cos(theta)[:, None]])


def radial_density(spokes: int, samples: int) -> torch.Tensor:
    """Ramp density compensation ``(samples,)`` of one spoke: ``|rho| d_rho d_theta``; ``d_rho^2 d_theta / 4`` at
    the centre."""
    d_rho, d_theta = 2 * math.pi / samples, math.pi / spokes
    rho = (torch.arange(samples, dtype=torch.float64) - samples // 2) * d_rho
    return torch.where(rho == 0, torch.full_like(rho, d_rho / 4), rho.abs()) * d_rho * d_theta


class _Plan:
    """The non-uniform points and engine settings shared by :class:`_NUFFT` and :class:`_NUFFTAdjoint`."""

    def __init__(self, kspace: torch.Tensor, shape: tuple[int, int], engine: str):
        self.k64 = kspace.reshape(2, -1).to(torch.float64).cpu().contiguous()
        self.shape, self.engine = shape, engine
        self.scale = 1.0 / math.sqrt(shape[0] * shape[1])
        self._np: dict = {}
        self._kb: dict = {}

    def points(self, dtype):
        """FINUFFT's (row, column) coordinates as contiguous numpy arrays of the real dtype."""
        if dtype not in self._np:
            k = self.k64.numpy().astype(np.float32 if dtype == torch.complex64 else np.float64)
            self._np[dtype] = (np.ascontiguousarray(k[0]), np.ascontiguousarray(k[1]))
        return self._np[dtype]

    def kb(self, dtype, device):
        """torchkbnufft's forward and adjoint modules and its trajectory on ``device``."""
        key = (dtype, str(device))
        if key not in self._kb:
            with warnings.catch_warnings():  # its import scripts functions with the deprecated torch.jit.script
                warnings.simplefilter("ignore", FutureWarning)
                import torchkbnufft as tkbn

            real = torch.float32 if dtype == torch.complex64 else torch.float64
            self._kb[key] = (tkbn.KbNufft(im_size=self.shape, dtype=dtype, device=device),
                             tkbn.KbNufftAdjoint(im_size=self.shape, dtype=dtype, device=device),
                             self.k64.to(device=device, dtype=real))
        return self._kb[key]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(m, H, W)`` complex -> ``(m, M)``: ``scale * sum_r z(r) exp(-i k . r)``."""
        if self.engine == "torchkbnufft":
            nu, _, k = self.kb(z.dtype, z.device)
            return nu(z[:, None], k)[:, 0] * self.scale
        import finufft

        kr, kc = self.points(z.dtype)
        eps = 1e-12 if z.dtype == torch.complex128 else 1e-6
        f = np.ascontiguousarray(z.detach().cpu().numpy())
        out = finufft.nufft2d2(kr, kc, f, eps=eps, isign=-1, nthreads=torch.get_num_threads())
        return torch.from_numpy(out).to(z.device) * self.scale

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``(m, M)`` complex -> ``(m, H, W)``: ``scale * sum_j y_j exp(+i k_j . r)``."""
        if self.engine == "torchkbnufft":
            _, adj, k = self.kb(y.dtype, y.device)
            return adj(y[:, None], k)[:, 0] * self.scale
        import finufft

        kr, kc = self.points(y.dtype)
        eps = 1e-12 if y.dtype == torch.complex128 else 1e-6
        c = np.ascontiguousarray(y.detach().cpu().numpy())
        out = finufft.nufft2d1(kr, kc, c, n_modes=self.shape, eps=eps, isign=1, nthreads=torch.get_num_threads())
        return torch.from_numpy(out).to(y.device) * self.scale


class _NUFFT(torch.autograd.Function):
    """``A z`` with backward ``A^H g`` (PyTorch's complex convention for a C-linear map)."""

    @staticmethod
    def forward(ctx, z, plan):
        ctx.plan = plan
        return plan.forward(z)

    @staticmethod
    def backward(ctx, g):
        return _NUFFTAdjoint.apply(g.contiguous(), ctx.plan), None


class _NUFFTAdjoint(torch.autograd.Function):
    """``A^H y`` with backward ``A g``."""

    @staticmethod
    def forward(ctx, y, plan):
        ctx.plan = plan
        return plan.adjoint(y)

    @staticmethod
    def backward(ctx, g):
        return _NUFFT.apply(g.contiguous(), ctx.plan), None


def _complex(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, ...) real -> (B, ...) complex."""
    return torch.view_as_complex(x.movedim(1, -1).contiguous())


def _real(z: torch.Tensor) -> torch.Tensor:
    """(B, ...) complex -> (B, 2, ...) real."""
    return torch.view_as_real(z.resolve_conj()).movedim(-1, 1)


class RadialMRI(ForwardModel):
    """Radial MRI ``y = A x`` on a non-uniform FFT: image ``(2, H, W)`` -> k-space ``(2, [C,] spokes, samples)``.

    Args:
        img_size: ``N`` (square) or ``(H, W)``, at least 4.
        spokes: number of spokes ``S``.
        samples_per_spoke: readout samples ``n`` per spoke over [-pi, pi) (default ``2 max(H, W)``).
        trajectory: "golden" (golden-angle increments, 111.25 degrees) or "uniform" (``pi / S``).
        angles: spoke angles in degrees (overrides ``trajectory``; e.g. those a scanner recorded).
        coil_maps: None (single coil) or sensitivities ``(2, C, H, W)`` (real, imaginary) / complex ``(C, H, W)``.
        real_image: take real images ``(1, H, W)`` (``x -> A [x; 0]``; adjoint ``Re(A^H y)``).
        engine: "finufft" (default) or "torchkbnufft" (module docstring).

    Linear and differentiable; ``adjoint`` is ``A^H`` (to the engine's tolerance, see the module docstring),
    ``gridding(y)`` the density-compensated reconstruction (the zero-filled baseline), ``pseudo_inverse``
    the conjugate gradients of :class:`ForwardModel`.

    Example::

        import torch
        from forward_models.coils import synthetic_coil_maps
        from forward_models.radial_mri import RadialMRI
        S = synthetic_coil_maps(4, 32, 32, seed=0, dtype=torch.float64)
        op = RadialMRI(32, spokes=16, coil_maps=S, real_image=True)
        y = op(torch.rand(2, 1, 32, 32, dtype=torch.float64))    # (2, 2, 4, 16, 64)
        x = op.gridding(y)                                       # (2, 1, 32, 32)
    """

    linear = True
    differentiable = True

    def __init__(self, img_size=64, spokes: int = 32, samples_per_spoke: int | None = None, *,
                 trajectory: str = "golden", angles=None, coil_maps=None, real_image: bool = False,
                 engine: str = "finufft", device=None):
        super().__init__()
        size = (img_size, img_size) if not isinstance(img_size, (tuple, list)) else tuple(img_size)
        if len(size) != 2:
            raise ForwardModelError(f"img_size must be N or (H, W), got {img_size!r}")
        H, W = (integer_at_least(s, "img_size", 4) for s in size)
        if angles is not None:
            angles = [number_in(float(a), "angle") for a in torch.as_tensor(angles).reshape(-1).tolist()]
            if not angles:
                raise ForwardModelError("RadialMRI: angles is empty")
            S = len(angles)
        else:
            S = integer_at_least(spokes, "spokes", 1)
            if trajectory not in _TRAJECTORIES:
                raise ForwardModelError(f"unknown radial trajectory {trajectory!r}; known: "
                                        f"{', '.join(_TRAJECTORIES)}")
        n = 2 * max(H, W) if samples_per_spoke is None else integer_at_least(samples_per_spoke,
                                                                              "samples_per_spoke", 2)
        if engine not in ENGINES:
            raise ForwardModelError(f"unknown NUFFT engine {engine!r}; known: {', '.join(ENGINES)}")
        self.img_size, self.spokes, self.samples_per_spoke = (H, W), S, n
        self.trajectory = "angles" if angles is not None else trajectory
        self._angles = angles
        self.engine, self.real_image = engine, bool(real_image)
        self.register_buffer("kspace", radial_trajectory(S, n, trajectory, angles), persistent=False)
        self.num_coils = 0
        if coil_maps is not None:
            C = torch.as_tensor(coil_maps)
            if C.is_complex():
                C = torch.stack([C.real, C.imag], 0)
            if C.ndim != 4 or C.shape[0] != 2 or tuple(C.shape[2:]) != (H, W) or C.shape[1] < 1:
                raise ForwardModelError(f"RadialMRI: coil maps must have shape (2, C, {H}, {W}) (real, imaginary) "
                                        f"or complex (C, {H}, {W}), got {tuple(torch.as_tensor(coil_maps).shape)}")
            if not bool(torch.isfinite(C).all()):
                raise ForwardModelError("RadialMRI: the coil maps contain NaN or Inf")
            self.register_buffer("coil_maps", C.to(torch.float64 if not C.is_floating_point() else C.dtype))
            self.num_coils = int(C.shape[1])
        self._coil_spec = None
        self._plan = _Plan(self.kspace, (H, W), engine)
        self.input_shape = (1 if self.real_image else 2, H, W)
        self.output_shape = (2, *((self.num_coils,) if self.num_coils else ()), S, n)
        if device is not None:
            self.to(device)

    @classmethod
    def with_coils(cls, img_size=64, spokes: int = 32, samples_per_spoke: int | None = None, *, num_coils: int = 8,
                   coil_seed: int | None = None, **kwargs) -> RadialMRI:
        """Multi-coil operator with :func:`~forward_models.coils.synthetic_coil_maps` (the recipe is kept in
        ``config()``)."""
        size = (img_size, img_size) if not isinstance(img_size, (tuple, list)) else tuple(img_size)
        maps = synthetic_coil_maps(num_coils, int(size[0]), int(size[1]), seed=coil_seed, dtype=torch.float64)
        op = cls(img_size, spokes, samples_per_spoke, coil_maps=maps, **kwargs)
        op._coil_spec = {"generator": "synthetic_coil_maps", "num_coils": int(num_coils), "seed": coil_seed}
        return op

    # ------------------------------------------------------------------ the linear map
    def _maps(self, dtype):
        S = self.coil_maps.to(dtype)
        return torch.complex(S[0], S[1])  # (C, H, W)

    def forward(self, x):
        """``A x`` for a batch ``(B, *input_shape)`` -> ``(B, *output_shape)``."""
        B = x.shape[0]
        z = torch.complex(x[:, 0], torch.zeros_like(x[:, 0])) if self.real_image else _complex(x)  # (B, H, W)
        if self.num_coils:
            z = (z[:, None] * self._maps(x.dtype)).reshape(-1, *self.img_size)
        k = _NUFFT.apply(z.contiguous(), self._plan)  # (B [C], S n)
        return _real(k.reshape(B, *self.output_shape[1:-2], self.spokes, self.samples_per_spoke))

    def _adjoint_coils(self, y):
        """``(B, 2, [C,] S, n)`` -> coil images ``(B, [C,] H, W)`` complex, ``A_c^H y_c`` without coil weighting."""
        k = _complex(y).reshape(-1, self.spokes * self.samples_per_spoke)
        z = _NUFFTAdjoint.apply(k.contiguous(), self._plan)
        return z.reshape(y.shape[0], *self.output_shape[1:-2], *self.img_size)

    def _image(self, z):
        """Complex image batch ``(B, H, W)`` in the input layout."""
        return z.real[:, None] if self.real_image else _real(z)

    def adjoint(self, y):
        """``A^H y`` (``Re(A^H y)`` for real images) for a batch ``(B, *output_shape)``."""
        check_batch(y, self.output_shape, "measurement")
        z = self._adjoint_coils(y)
        if self.num_coils:
            z = (self._maps(y.dtype).conj() * z).sum(1)
        return self._image(z)

    def density(self, dtype=torch.float64, device=None) -> torch.Tensor:
        """Density-compensation weights ``(spokes, samples)`` of :func:`radial_density`."""
        w = radial_density(self.spokes, self.samples_per_spoke).to(dtype=dtype, device=device)
        return w.expand(self.spokes, self.samples_per_spoke)

    def gridding(self, y):
        """Density-compensated, coil-combined reconstruction ``(H W / 4 pi^2) A^H (w y)`` (module docstring)."""
        check_batch(y, self.output_shape, "measurement")
        if not bool(torch.isfinite(y).all()):
            raise ForwardModelError("the k-space passed to gridding contains NaN or Inf")
        H, W = self.img_size
        z = self._adjoint_coils(y * self.density(y.dtype, y.device)) * (H * W / (4 * math.pi**2))
        if self.num_coils:
            S = self._maps(y.dtype)
            num, den = (S.conj() * z).sum(1), (S.abs() ** 2).sum(0)
            ok = den > 1e-12 * den.max()
            z = torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))
        return self._image(z)

    def zero_filled(self, y):
        """The gridding reconstruction (:meth:`gridding`), the non-Cartesian counterpart of zero filling."""
        return self.gridding(y)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_plan"] = _Plan(self.kspace, self.img_size, self.engine)  # fresh engine caches
        return state

    # ------------------------------------------------------------------ description
    def config(self):
        """Constructor arguments and geometry (JSON)."""
        cfg = {**super().config(), "class": "RadialMRI", "img_size": list(self.img_size), "spokes": self.spokes,
               "samples_per_spoke": self.samples_per_spoke, "trajectory": self.trajectory,
               "real_image": self.real_image, "engine": self.engine, "num_coils": self.num_coils,
               "kspace_units": "radians per pixel"}
        if self._angles is not None:
            cfg["angles"] = list(self._angles)
        if self._coil_spec is not None:
            cfg["coil_spec"] = dict(self._coil_spec)
        return cfg

    @classmethod
    def from_config(cls, cfg: dict, *, coil_maps=None, device=None) -> RadialMRI:
        """The operator :meth:`config` describes; coil maps from its ``coil_spec`` recipe or ``coil_maps``."""
        try:
            kw = {"trajectory": cfg["trajectory"] if cfg["trajectory"] != "angles" else "golden",
                  "angles": cfg.get("angles"), "real_image": cfg["real_image"], "engine": cfg["engine"],
                  "device": device}
            args = (cfg["img_size"], cfg["spokes"], cfg["samples_per_spoke"])
            num_coils = int(cfg["num_coils"])
        except (KeyError, TypeError, ValueError) as e:
            raise ForwardModelError(f"RadialMRI configuration is incomplete or malformed: {e}") from None
        spec = cfg.get("coil_spec")
        if num_coils and coil_maps is None:
            if not spec:
                raise ForwardModelError("RadialMRI configuration has coils but no coil_spec: pass coil_maps")
            return cls.with_coils(*args, num_coils=spec["num_coils"], coil_seed=spec["seed"], **kw)
        return cls(*args, coil_maps=coil_maps, **kw)


# --------------------------------------------------------------------------- registry entries

def _example_single(seed: int) -> RadialMRI:
    # few, well separated samples: A A^H is well conditioned, so the contract suite's conjugate gradients converge
    return RadialMRI(8, spokes=3, samples_per_spoke=6, trajectory="uniform")


def _example_multi(seed: int) -> RadialMRI:
    return RadialMRI.with_coils(8, spokes=2, samples_per_spoke=4, num_coils=2, coil_seed=seed, trajectory="uniform",
                                real_image=True)


def _benchmark_single() -> RadialMRI:
    return RadialMRI(64, spokes=32)


def _benchmark_multi() -> RadialMRI:
    return RadialMRI.with_coils(64, spokes=32, num_coils=8, coil_seed=0, real_image=True)


#: name -> class, small example builder, benchmark-size builder (64 x 64, 32 golden-angle spokes of 128 samples)
REGISTRY_ENTRIES = {
    "mri-radial": {"cls": RadialMRI, "example": _example_single, "benchmark": _benchmark_single},
    "mri-radial-multicoil": {"cls": RadialMRI, "example": _example_multi, "benchmark": _benchmark_multi},
}
