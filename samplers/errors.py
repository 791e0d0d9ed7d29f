"""Errors raised by samplers."""

__all__ = ["SamplerError", "SamplerConfigError"]


class SamplerError(RuntimeError):
    """A sampler met a problem it cannot continue from (non-finite particles, collapsed weights)."""


class SamplerConfigError(ValueError):
    """Invalid sampler input: an unknown name, a bad setting, or a problem / prior the sampler cannot take."""
