"""One-line errors for unknown names (operators, problems, samplers, data sets, models) with a suggestion."""

from __future__ import annotations

import difflib

__all__ = ["unknown_name_message"]


def unknown_name_message(kind: str, name: str, known) -> str:
    """``unknown KIND 'name'; did you mean 'x'? (known: a, b, c)``: closest match by ``difflib`` ratio (>= 0.6)."""
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})"
