"""Benchmark reporting: timing by median of repeats, the ``Machine:`` line under every table, and tables in
BENCHMARKS.md (each lives between two marker comments and is replaced in place, atomically, when its script
runs again).

A sibling of the benchmark scripts in ``scripts/benchmarks/`` (they import it by name); it imports only the
installed packages.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from samplers.atomic import atomic_output

__all__ = ["replace_markdown_block", "markdown_table", "median_time", "synchronize", "write_json", "script_command",
           "publish", "machine_line"]


def replace_markdown_block(markdown, key: str, heading: str, table: str) -> None:
    """Replace the block ``<!-- {key}:begin --> ... <!-- {key}:end -->`` in ``markdown`` by ``table``;
    append it under ``## {heading}`` when the block does not exist yet."""
    path = Path(markdown)
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{table}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + f"\n\n## {heading}\n\n" + block + "\n"
    with atomic_output(path, overwrite=True, suffix=".tmp") as tmp:
        tmp.write_text(text)


def markdown_table(command: str, body: str, markdown=None, *, key: str, heading: str) -> str:
    """A table as BENCHMARKS.md shows it: ``Command: `command```, a blank line, ``body``; with ``markdown``, its
    block ``key`` is replaced (:func:`replace_markdown_block`). Returns the text."""
    table = f"Command: `{command}`\n\n{body}"
    if markdown:
        replace_markdown_block(markdown, key, heading, table)
    return table


def machine_line(threads, setup: str = "", *, seeds=None, note: str = "") -> str:
    """The ``Machine:`` sentence every table opens with: architecture and processor, cores, torch version,
    ``threads`` (a count, or a phrase such as a GPU's name), the table's ``setup`` (dtype, batch, timing rule),
    the load average when written, the ``seeds`` and the date, then ``note``."""
    import torch

    try:
        load = f"; load average at write {os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover - not on every OS
        load = ""
    where = f"{threads} thread(s)" if isinstance(threads, int) else str(threads)
    line = (f"Machine: {platform.machine()} ({platform.processor() or 'cpu'}), {os.cpu_count()} cores, "
            f"torch {torch.__version__}, {where}{f', {setup}' if setup else ''}{load}"
            f"{f'; seeds: {seeds}' if seeds is not None else ''}; written {dt.date.today().isoformat()}.")
    return line + (f" {note}" if note else "")


def write_json(path, obj, indent: int = 1) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (a temporary file renamed over it, so a
    killed run never leaves half a file); parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent))


def script_command(script: str, argv=None) -> str:
    """The command line that produced a table: ``python scripts/benchmarks/<script>.py`` and its arguments
    (``argv``, else the process's own)."""
    args = list(argv) if argv is not None else sys.argv[1:]
    return " ".join([f"python scripts/benchmarks/{script}.py", *args])


def publish(rows, table: str, *, json_path, markdown=None, key: str, heading: str) -> None:
    """A benchmark script's output: ``rows`` to ``json_path`` (:func:`write_json`), the table printed,
    and, with ``markdown``, its block ``key`` replaced (:func:`replace_markdown_block`)."""
    write_json(json_path, rows)
    print(table)
    if markdown:
        replace_markdown_block(markdown, key, heading, table)


def synchronize() -> None:
    """Wait for queued CUDA work (a no-op where CUDA was never used), so wall times include it."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def median_time(fn, repeats: int) -> float:
    """Median wall time in seconds of ``fn()`` over ``repeats`` calls, after one warm-up call (CUDA work
    included: the device is synchronised before each clock reading)."""
    fn()
    ts = []
    for _ in range(int(repeats)):
        synchronize()
        t0 = time.perf_counter()
        fn()
        synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)
