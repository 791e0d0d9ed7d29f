"""One registry of forward models: command-line names, and the contract test suite's instances.

A new operator gets the whole contract suite (``tests/forward_models/test_contract.py``) by one
entry here: its class and a function building a small example instance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from forward_models.base import ForwardModel
from forward_models.errors import ForwardModelError
from forward_models.linear import Inpainting, MatrixOperator
from forward_models.names import unknown_name_message

__all__ = ["REGISTRY", "register", "get_operator", "example_operator", "benchmark_operator", "unknown_name_message"]

#: name -> (class, builder of a small seeded example instance, builder at the documented size)
REGISTRY: dict[str, tuple[type, Callable[[int], ForwardModel], Callable[[], ForwardModel] | None]] = {}


def register(name: str, cls: type, example: Callable[[int], ForwardModel],
             benchmark: Callable[[], ForwardModel] | None = None) -> None:
    """Add an operator under ``name`` with builders ``example(seed)`` (small) and ``benchmark()`` (documented size)."""
    REGISTRY[name] = (cls, example, benchmark)


def get_operator(name: str) -> type:
    """The operator class registered under ``name`` (``ValueError`` with a suggestion otherwise)."""
    if name not in REGISTRY:
        raise ForwardModelError(unknown_name_message("forward model", name, REGISTRY))
    return REGISTRY[name][0]


def example_operator(name: str, seed: int = 0) -> ForwardModel:
    """A small example instance of a registered operator (for tests and docs)."""
    get_operator(name)
    return REGISTRY[name][1](seed)


def benchmark_operator(name: str) -> ForwardModel:
    """The instance at the documented size (the small example when none is registered)."""
    get_operator(name)
    _, example, bench = REGISTRY[name]
    return bench() if bench is not None else example(0)


def _example_matrix(seed: int) -> MatrixOperator:
    g = torch.Generator().manual_seed(seed)
    return MatrixOperator(torch.randn(3, 6, generator=g, dtype=torch.float64), dtype=torch.float64)


def _example_inpainting(seed: int) -> Inpainting:
    g = torch.Generator().manual_seed(seed)
    return Inpainting((torch.rand(1, 6, 5, generator=g) > 0.4).float())


def _benchmark_inpainting() -> Inpainting:
    g = torch.Generator().manual_seed(0)
    return Inpainting((torch.rand(1, 64, 64, generator=g) > 0.5).float())


register("matrix", MatrixOperator, _example_matrix)
register("inpainting", Inpainting, _example_inpainting, _benchmark_inpainting)


def _register_module(entries: dict) -> None:
    for name, e in entries.items():
        register(name, e["cls"], e["example"], e.get("benchmark"))


# each physics module declares its own REGISTRY_ENTRIES (imports of deepwave / deepinv stay lazy)
from forward_models import (  # noqa: E402
    adapters,
    darcy,
    fanbeam,
    mri,
    navier_stokes,
    radial_mri,
    seismic,
    tomography,
    trace_interpolation,
)

for _module in (mri, radial_mri, tomography, fanbeam, navier_stokes, darcy, seismic, trace_interpolation, adapters):
    _register_module(_module.REGISTRY_ENTRIES)
