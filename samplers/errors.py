"""Errors raised by samplers."""

__all__ = ["SamplerError"]


class SamplerError(RuntimeError):
    """A sampler met a problem it cannot continue from (non-finite particles, collapsed weights)."""
