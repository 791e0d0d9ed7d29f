"""Missing-trace interpolation: a shot gather with whole receiver columns (traces) removed.

The forward map zeroes the traces of missing receivers,

    y[s, t, r] = m[s, r] * x[s, t, r],        m[s, r] in {0, 1}   (1 = trace recorded),

a diagonal 0/1 matrix ``A = diag(m)``: self-adjoint (``A^T = A``) and idempotent (``A^2 = A``), so
``A A^T = A`` and the damped pseudo-inverse is

    A^T (A A^T + lambda I)^{-1} y = m * y / (1 + lambda)

(the missing entries of ``y`` are ignored, as they should be). Seismic trace interpolation as
an inverse problem with a diffusion prior (e.g. SeisFusion, Zhang et al. 2024, tests ~50 % of the
traces missing); a gap of consecutive traces is the harder case.

Gathers follow OpenFWI's layout ``(shots, nt, receivers)`` (time before receiver), which is also
:class:`forward_models.seismic.AcousticFWI`'s output, so simulated data feed in directly.
"""

from __future__ import annotations

import torch

from forward_models.base import ForwardModel, check_batch, check_damping
from forward_models.errors import ForwardModelError

__all__ = ["TraceInterpolation", "random_trace_mask", "gap_trace_mask", "REGISTRY_ENTRIES"]


def random_trace_mask(num_receivers: int, fraction_missing: float, seed: int = 0) -> torch.Tensor:
    """Trace mask ``(num_receivers,)`` with ``round(fraction_missing * num_receivers)`` traces missing at random.

    The missing receivers are a uniformly random subset of that size (seeded ``torch.Generator``);
    1 = recorded, 0 = missing.
    """
    if not isinstance(num_receivers, int) or num_receivers < 1:
        raise ForwardModelError(f"random_trace_mask: num_receivers must be a positive integer, got {num_receivers!r}")
    if not 0.0 <= float(fraction_missing) <= 1.0:
        raise ForwardModelError(f"random_trace_mask: fraction_missing must lie in [0, 1], got {fraction_missing}")
    k = round(float(fraction_missing) * num_receivers)
    g = torch.Generator().manual_seed(int(seed))
    mask = torch.ones(num_receivers)
    mask[torch.randperm(num_receivers, generator=g)[:k]] = 0.0
    return mask


def gap_trace_mask(num_receivers: int, gap_width: int, start: int | None = None) -> torch.Tensor:
    """Trace mask ``(num_receivers,)`` missing the consecutive receivers ``start, ..., start + gap_width - 1``.

    ``start=None`` centres the gap. 1 = recorded, 0 = missing.
    """
    if not isinstance(num_receivers, int) or num_receivers < 1:
        raise ForwardModelError(f"gap_trace_mask: num_receivers must be a positive integer, got {num_receivers!r}")
    if not isinstance(gap_width, int) or not 0 <= gap_width <= num_receivers:
        raise ForwardModelError(f"gap_trace_mask: gap_width must be an integer in [0, {num_receivers}], got "
                                f"{gap_width!r}")
    if start is None:
        start = (num_receivers - gap_width) // 2
    if not isinstance(start, int) or start < 0 or start + gap_width > num_receivers:
        raise ForwardModelError(f"gap_trace_mask: the gap [start, start + gap_width) = [{start}, {start}+{gap_width}) "
                                f"must lie within the {num_receivers} receivers")
    mask = torch.ones(num_receivers)
    mask[start:start + gap_width] = 0.0
    return mask


class TraceInterpolation(ForwardModel):
    """Missing-trace operator ``y = m * x`` on shot gathers ``(num_shots, nt, num_receivers)``; 1 = trace kept.

    ``mask`` is ``(num_receivers,)`` (the same receivers missing in every shot) or
    ``(num_shots, num_receivers)`` (per shot); with a 1-D mask ``num_shots`` (default 1) sets the
    number of gathers per sample. Input and output have shape ``(B, num_shots, nt, num_receivers)``
    (time before receiver, as OpenFWI and :class:`forward_models.seismic.AcousticFWI`); missing
    traces come out as zeros. Linear, self-adjoint, its own pseudo-inverse.

    Example::

        import torch
        from forward_models.trace_interpolation import TraceInterpolation, random_trace_mask
        op = TraceInterpolation(random_trace_mask(70, 0.5, seed=0), nt=1000, num_shots=5)
        y = op(torch.randn(2, 5, 1000, 70))   # half of the 70 traces of each gather zeroed
    """

    linear = True
    differentiable = True

    def __init__(self, mask, nt: int, num_shots: int | None = None, *, device=None):
        super().__init__()
        mask = torch.as_tensor(mask)
        if mask.ndim not in (1, 2) or mask.numel() == 0:
            raise ForwardModelError("TraceInterpolation: the mask must be (num_receivers,) or (num_shots, "
                                    f"num_receivers), got shape {tuple(mask.shape)}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ForwardModelError("TraceInterpolation: the mask must contain only 0 (missing trace) and 1 (recorded)")
        if not isinstance(nt, int) or isinstance(nt, bool) or nt < 1:
            raise ForwardModelError(f"TraceInterpolation: nt must be a positive integer, got {nt!r}")
        if mask.ndim == 2:
            if num_shots is not None and num_shots != mask.shape[0]:
                raise ForwardModelError(f"TraceInterpolation: num_shots={num_shots} disagrees with the per-shot mask's "
                                        f"{mask.shape[0]} rows")
            num_shots = mask.shape[0]
        num_shots = 1 if num_shots is None else num_shots
        if not isinstance(num_shots, int) or num_shots < 1:
            raise ForwardModelError(f"TraceInterpolation: num_shots must be a positive integer, got {num_shots!r}")
        mask = mask.to(torch.get_default_dtype()).expand(num_shots, mask.shape[-1]).clone()
        self.register_buffer("mask", mask)  # (shots, receivers)
        self.nt = int(nt)
        self.input_shape = self.output_shape = (num_shots, self.nt, mask.shape[1])
        if device is not None:
            self.to(device)

    def _mask_traces(self, x):
        return x * self.mask.to(x.dtype)[:, None, :]

    def forward(self, x):
        """``m * x``: the missing traces set to zero."""
        return self._mask_traces(x)

    def adjoint(self, y):
        """``m * y`` (the operator is self-adjoint)."""
        check_batch(y, self.output_shape, "measurement")
        return self._mask_traces(y)

    def pseudo_inverse(self, y, *, damping: float = 0.0, **_):
        """``m * y / (1 + damping)``: a projection is its own pseudo-inverse."""
        return self.adjoint(y) / (1.0 + check_damping(damping))

    def config(self):
        """Configuration: shapes, the missing fraction and the missing receivers of each shot."""
        missing = [[int(r) for r in torch.nonzero(row == 0).flatten()] for row in self.mask]
        return {**super().config(), "nt": self.nt, "num_shots": self.input_shape[0],
                "num_receivers": self.input_shape[2], "fraction_missing": float(1 - self.mask.double().mean()),
                "missing_receivers": missing}


def _example_interp(seed: int) -> TraceInterpolation:
    """Small: 2 shots of 30 samples x 12 receivers, 5 traces missing at random."""
    return TraceInterpolation(random_trace_mask(12, 5 / 12, seed=seed), nt=30, num_shots=2)


def _benchmark_interp() -> TraceInterpolation:
    """OpenFWI's gathers: 5 shots x 1000 samples x 70 receivers, 50 % of the traces missing."""
    return TraceInterpolation(random_trace_mask(70, 0.5, seed=0), nt=1000, num_shots=5)


REGISTRY_ENTRIES = {"seismic-interp": {"cls": TraceInterpolation, "example": _example_interp,
                                       "benchmark": _benchmark_interp}}
