"""The result of every sampler: weighted or unweighted posterior samples, with summaries and I/O.

Weighted estimates use self-normalised importance weights ``w_i = exp(l_i) / sum_j exp(l_j)``:
mean ``sum w_i x_i``, variance ``sum w_i (x_i - m)^2 / (1 - sum w_i^2)`` (unbiased; equals the
usual N-1 estimate for equal weights), quantiles from the weighted empirical distribution
function with mid-point interpolation (``torch.quantile``'s linear rule for equal weights).

``to_xarray`` / ``to_netcdf`` / :func:`open_posterior` round-trip exactly (same values, dtypes,
configuration and diagnostics).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from samplers.errors import SamplerConfigError
from samplers.netcdf import write_netcdf

__all__ = ["Posterior", "open_posterior", "default_dims", "package_version", "package_versions"]

_FORMAT = "inverse-posterior/1"
#: dimensions whose index is a pixel position (units ``pixel`` when no physical coordinate is given)
_IMAGE_AXES = ("y", "x", "z", "depth")


def package_version() -> str:
    """Installed version of this library (``"unknown"`` when run from a source tree)."""
    try:
        return metadata.version("inverse-diffusion")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def package_versions() -> dict:
    """Versions of this library and of the packages that decide its numbers (recorded in every posterior)."""
    import platform

    out = {"inverse-diffusion": package_version(), "python": platform.python_version(), "torch": torch.__version__}
    for name in ("numpy", "diffusers", "xarray"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover
            pass
    return out


def default_dims(ndim: int) -> tuple[str, ...]:
    """Dimension names of one sample: ``(dim,)``, ``(y, x)``, ``(channel, y, x)`` or ``(dim_0, ...)``."""
    return {1: ("dim",), 2: ("y", "x"), 3: ("channel", "y", "x")}.get(ndim, tuple(f"dim_{i}" for i in range(ndim)))


@dataclass
class Posterior:
    """Posterior samples in physical units, optional log-weights, diagnostics and configuration.

    Attributes
    ----------
    samples : tensor (N, *shape)
    log_weights : tensor (N,) or None (equal weights)
    diagnostics : dict of JSON values (cost counters, ESS history, log-evidence, wall time, ...)
    config : dict of JSON values (sampler, prior, forward model, seed)
    truth : optional tensor of one sample's shape
    dims : names of one sample's dimensions (NetCDF)
    coords : optional coordinates per dimension (name -> values), in physical units
    coord_attrs : optional attributes per coordinate (name -> ``{"units": ..., "long_name": ...}``, CF
        conventions); a dimension without a coordinate is written with its index (units ``pixel`` for the
        image axes ``y``, ``x``, ``z``, ``depth``, else ``1``), so every dimension of the file has one
    units : physical units of the samples
    extras : named real tensors stored beside the samples: of one sample's shape (e.g. the direct
        reconstruction ``measurement_view`` that figures show next to the posterior mean, stored with
        the samples' dimensions) or of any other shape (``measurement_image``: the measurement itself
        for problems without a direct reconstruction, stored with dimensions ``NAME_0, NAME_1, ...``)

    Example::

        import torch
        from samplers import Posterior
        post = Posterior(torch.randn(100, 2))
        post.mean(), post.std(), post.quantile(0.9)
        post.to_netcdf("posterior.nc", overwrite=True)
    """

    samples: torch.Tensor
    log_weights: torch.Tensor | None = None
    diagnostics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    truth: torch.Tensor | None = None
    dims: tuple[str, ...] | None = None
    coords: dict | None = None
    units: str = ""
    extras: dict = field(default_factory=dict)
    coord_attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        self.samples = torch.as_tensor(self.samples)
        if self.samples.ndim < 2 or self.samples.shape[0] < 1:
            raise SamplerConfigError("samples must have shape (N, *shape) with N >= 1, got "
                                     f"{tuple(self.samples.shape)}")
        if self.log_weights is not None:
            self.log_weights = torch.as_tensor(self.log_weights)
            if self.log_weights.shape != (self.samples.shape[0],):
                raise SamplerConfigError(f"log_weights must have shape ({self.samples.shape[0]},), "
                                         f"got {tuple(self.log_weights.shape)}")
            if bool(torch.isnan(self.log_weights).any()) or not bool(torch.isfinite(self.log_weights).any()):
                raise SamplerConfigError("log_weights contain NaN or are all -inf: the weights have collapsed")
        if self.dims is None:
            self.dims = default_dims(self.samples.ndim - 1)
        self.dims = tuple(self.dims)
        if len(self.dims) != self.samples.ndim - 1:
            raise SamplerConfigError(f"dims {self.dims} do not match a sample of shape {tuple(self.samples.shape[1:])}")
        if self.truth is not None:
            self.truth = torch.as_tensor(self.truth)
            if self.truth.shape != self.samples.shape[1:]:
                raise SamplerConfigError(f"truth has shape {tuple(self.truth.shape)}, "
                                         f"samples have {tuple(self.samples.shape[1:])}")

    @property
    def num_samples(self) -> int:
        """Number N of samples."""
        return self.samples.shape[0]

    def weights(self) -> torch.Tensor:
        """Normalised weights (N,), float64."""
        n = self.num_samples
        if self.log_weights is None:
            return torch.full((n,), 1.0 / n, dtype=torch.float64, device=self.samples.device)
        return torch.softmax(self.log_weights.to(torch.float64), 0)

    def ess(self) -> float:
        """Effective sample size ``1 / sum w_i^2`` (N for equal weights)."""
        w = self.weights()
        return float(1.0 / (w**2).sum())

    def _w(self) -> torch.Tensor:
        return self.weights().reshape(-1, *([1] * (self.samples.ndim - 1)))

    def mean(self) -> torch.Tensor:
        """Posterior mean ``sum_i w_i x_i`` (float64)."""
        return (self._w() * self.samples.to(torch.float64)).sum(0)

    def var(self) -> torch.Tensor:
        """Unbiased weighted variance per entry (float64); zero for a single sample."""
        w = self._w()
        d2 = (self.samples.to(torch.float64) - self.mean()) ** 2
        denom = 1.0 - float((self.weights() ** 2).sum())
        if denom <= 0:
            return torch.zeros_like(d2[0])
        return (w * d2).sum(0) / denom

    def std(self) -> torch.Tensor:
        """Posterior standard deviation per entry, ``sqrt(var())``."""
        return self.var().sqrt()

    def quantile(self, q) -> torch.Tensor:
        """Weighted quantile(s) per entry; ``q`` scalar -> one sample's shape, vector -> (len(q), *shape)."""
        qs = torch.as_tensor(q, dtype=torch.float64, device=self.samples.device)
        if bool(((qs < 0) | (qs > 1)).any()):
            raise SamplerConfigError(f"quantiles must lie in [0, 1], got {q}")
        x = self.samples.to(torch.float64)
        if self.log_weights is None:
            return torch.quantile(x, qs, dim=0)
        flat = x.reshape(self.num_samples, -1)
        order = torch.argsort(flat, dim=0)
        xs = torch.gather(flat, 0, order)
        ws = self.weights()[order]
        cw = torch.cumsum(ws, 0) - 0.5 * ws  # mid-point plotting positions
        qv = qs.reshape(-1)
        out = torch.empty(len(qv), flat.shape[1], dtype=torch.float64, device=x.device)
        for j in range(flat.shape[1]):
            out[:, j] = torch.from_numpy(np.interp(qv.cpu().numpy(), cw[:, j].cpu().numpy(), xs[:, j].cpu().numpy()))
        out = out.reshape(len(qv), *x.shape[1:])
        return out[0] if qs.ndim == 0 else out

    def resample(self, n: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Equally weighted samples (multinomial resampling for weighted posteriors)."""
        n = self.num_samples if n is None else int(n)
        if self.log_weights is None and n == self.num_samples:
            return self.samples
        w = self.weights() if generator is None else self.weights().to(generator.device)
        idx = torch.multinomial(w, n, replacement=True, generator=generator)
        return self.samples[idx.to(self.samples.device)]

    # ------------------------------------------------------------------ I/O
    def to_xarray(self):
        """An ``xarray.Dataset``: ``samples`` (sample, *dims), optional ``log_weights`` and ``truth``;
        attributes hold configuration and diagnostics as JSON, the package version and the format."""
        import xarray as xr

        dims = ("sample",) + self.dims
        data = {"samples": (dims, self.samples.detach().cpu().numpy(), {"units": self.units})}
        if self.log_weights is not None:
            data["log_weights"] = (("sample",), self.log_weights.detach().cpu().numpy())
        if self.truth is not None:
            data["truth"] = (self.dims, self.truth.detach().cpu().numpy(), {"units": self.units})
        for name, t in (self.extras or {}).items():
            t = torch.as_tensor(t)
            if name in data or not name.isidentifier():
                raise SamplerConfigError(f"extra {name!r} needs a new name made of letters, digits and '_'")
            if t.is_complex():
                raise SamplerConfigError(f"extra {name!r}: complex tensors are not stored (split real and imaginary "
                                         "parts)")
            if t.shape == self.samples.shape[1:]:  # one sample's shape: the samples' dimensions and units
                data[name] = (self.dims, t.detach().cpu().numpy(), {"units": self.units, "role": "extra"})
            else:  # another shape (the measurement itself): dimensions of its own
                data[name] = (tuple(f"{name}_{i}" for i in range(t.ndim)), t.detach().cpu().numpy(), {"role": "extra"})
        coords = self._coordinates(data)
        attrs = {"format": _FORMAT, "config": json.dumps(self.config), "diagnostics": json.dumps(self.diagnostics),
                 "package_version": package_version(), "units": self.units,
                 "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def _coordinates(self, data: dict) -> dict:
        """``{dim: (dim, values, attrs)}`` for every dimension of ``data``: the given coordinates with their
        attributes, else the index (units ``pixel`` on image axes, ``1`` elsewhere)."""
        sizes = {d: n for _, (dims, a, *_) in data.items() for d, n in zip(dims, np.shape(a), strict=True)}
        out = {}
        for dim, n in sizes.items():
            given = (self.coords or {}).get(dim)
            values = np.arange(n) if given is None else np.asarray(given)
            attrs = dict((self.coord_attrs or {}).get(dim) or {})
            if given is None or "units" not in attrs:
                pixel = given is None and dim in _IMAGE_AXES
                attrs.setdefault("units", "pixel" if pixel else "1")
                attrs.setdefault("long_name", f"{dim} index" if given is None else dim)
            out[dim] = ((dim,), values, attrs)
        return out

    def to_netcdf(self, path, *, overwrite: bool = False) -> Path:
        """Write atomically to a NetCDF-4 file (h5netcdf engine); refuses to overwrite unless asked."""
        return write_netcdf(self.to_xarray(), path, overwrite=overwrite)

    @classmethod
    def from_xarray(cls, ds) -> Posterior:
        """Rebuild a :class:`Posterior` from :meth:`to_xarray`'s dataset (checks the format)."""
        if ds.attrs.get("format") != _FORMAT or "samples" not in ds:
            raise SamplerConfigError("not a posterior file: missing the 'samples' variable or the format attribute")
        samples = ds["samples"]
        for name in ("samples", "log_weights", "truth"):
            if name in ds and not np.issubdtype(ds[name].dtype, np.number):
                raise SamplerConfigError(f"corrupt posterior file: {name!r} is not numeric (dtype {ds[name].dtype})")
        dims = tuple(samples.dims[1:])
        lw = torch.from_numpy(ds["log_weights"].values.copy()) if "log_weights" in ds else None
        truth = torch.from_numpy(ds["truth"].values.copy()) if "truth" in ds else None
        generated = {"sample"} | {d for k in ds.data_vars if ds[k].attrs.get("role") == "extra" for d in ds[k].dims
                                  if d not in dims}
        coords = {k: ds.coords[k].values.copy() for k in ds.coords if k not in generated} or None
        coord_attrs = {k: {a: str(v) for a, v in ds.coords[k].attrs.items() if a in ("units", "long_name")}
                       for k in (coords or {}) if ds.coords[k].attrs}
        try:
            config = json.loads(ds.attrs.get("config", "{}"))
            diagnostics = json.loads(ds.attrs.get("diagnostics", "{}"))
        except (TypeError, ValueError) as e:
            raise SamplerConfigError(f"corrupt posterior file: bad JSON attribute ({type(e).__name__})") from None
        if not isinstance(config, dict) or not isinstance(diagnostics, dict):
            raise SamplerConfigError("corrupt posterior file: the config and diagnostics attributes must be JSON "
                                     "objects")
        extras = {k: torch.from_numpy(ds[k].values.copy()) for k in ds.data_vars
                  if ds[k].attrs.get("role") == "extra"}
        return cls(torch.from_numpy(samples.values.copy()), lw, diagnostics, config, truth, dims, coords,
                   str(ds.attrs.get("units", "")), extras, coord_attrs)


def open_posterior(path) -> Posterior:
    """Read a posterior written by :meth:`Posterior.to_netcdf` (clear errors for missing/corrupt files)."""
    from samplers.netcdf import load_dataset

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"posterior file {path} does not exist")
    if path.is_dir():
        raise SamplerConfigError(f"posterior file {path} is a directory")
    return Posterior.from_xarray(load_dataset(path, "posterior file"))

