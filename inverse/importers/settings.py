"""The settings every importer receives (``inverse import`` flags or keyword arguments of ``import_file``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ImportSettings", "settle_options"]


@dataclass
class ImportSettings:
    """What an importer may need besides the file; each importer reads the fields that concern it.

    ``options``: problem options (``-o KEY=VALUE``); ``noise_std``: None estimates it; ``variable``: the
    array's name in a ``.mat`` / HDF5 / NetCDF file; ``slice``: which slice of a stack (default: the middle);
    ``mask`` / ``coil_maps``: ``.npy`` files overriding the inferred mask / estimated maps; ``size``: image size
    to bring k-space to; ``angles``: CT angles (``START:STOP:STEP`` degrees, a comma list or a file);
    ``geometry``: ``parallel`` or ``fan``; ``any_size``: accept a size no shipped prior was trained at;
    ``command_line``: recorded as provenance.
    """

    options: dict = field(default_factory=dict)
    noise_std: float | None = None
    variable: str | None = None
    slice: int | None = None
    mask: str | None = None
    coil_maps: str | None = None
    size: int | None = None
    angles: str | None = None
    geometry: str = "parallel"
    any_size: bool = False
    command_line: str | None = None


def settle_options(options: dict, derived: dict, path) -> dict:
    """``options`` updated with the values the file itself fixes (``derived``: e.g. a sinogram's angle count);
    a ``-o`` value the user gave for one of them must agree, else a one-line :class:`UserError`."""
    from inverse.errors import UserError

    for k, v in derived.items():
        if k not in options:
            continue
        try:
            same = float(options[k]) == float(v)
        except (TypeError, ValueError):
            same = False
        if not same:
            raise UserError(f"{path}: -o {k}={options[k]!r} disagrees with the file, which gives {k}={v} "
                            f"(omit -o {k})")
    return {**options, **derived}
