"""One-line errors for unknown names (operators, problems, samplers, models, options) with a suggestion.

The suggestion is the known name closest to the given one by :class:`difflib.SequenceMatcher` ratio, if that
ratio reaches ``cutoff`` (:func:`difflib.get_close_matches`).

Example::

    from forward_models.names import close_match_hint, unknown_name_message
    unknown_name_message("sampler", "dsp", ["dps", "mcg"])  # "unknown sampler 'dsp'; did you mean 'dps'? (known: ...)"
    close_match_hint("T3", ["T2", "M0"], cutoff=0.5)        # "; did you mean 'T2'?"
"""

from __future__ import annotations

import difflib

__all__ = ["close_match_hint", "unknown_name_message"]


def close_match_hint(name, known, cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the known name ``x`` closest to ``name``; ``""`` when none reaches ``cutoff``."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_name_message(kind: str, name: str, known) -> str:
    """``unknown KIND 'name'; did you mean 'x'? (known: a, b, c)`` (:func:`close_match_hint`, cutoff 0.6)."""
    known = sorted(known)
    return f"unknown {kind} {name!r}{close_match_hint(name, known)} (known: {', '.join(known)})"
