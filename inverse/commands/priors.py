"""``inverse priors``: the shipped priors with their model cards (:func:`priors.shipped_priors`)."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``priors`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    pr = subparsers.add_parser("priors", help="list the shipped priors with their model cards")
    pr.add_argument("--json", action="store_true", help="print the full cards as JSON")
    return pr


def run(args) -> int:
    """Print one line per shipped prior, or the full cards as JSON."""
    from priors import shipped_priors

    cards = shipped_priors()
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    if not cards:
        print("no shipped priors found")
        return 0
    print(f"{'name':24s} {'kind':5s} {'shape':14s} {'units':22s} {'steps':>7s}  data")
    for name, c in cards.items():
        t = c.get("training", {})
        d = c.get("data", {})
        print(f"{name:24s} {c.get('kind', '?'):5s} {str(tuple(c.get('shape', []))):14s} "
              f"{c.get('units', c.get('normalisation', {}).get('units', '')):22s} {t.get('steps', '?'):>7}  "
              f"{d.get('description', '')}")
    return 0
