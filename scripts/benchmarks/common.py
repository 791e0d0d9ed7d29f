"""Shared pieces of the benchmark suite: settings, the machine header, a resumable result store,
timers around the network and the forward model, and Markdown blocks.

Every table of ``scripts/benchmarks/run.py`` opens with :func:`report.machine_line` (machine, threads, seeds,
date: the reproducibility facts a reader needs) and lives between marker comments of BENCHMARKS.md
(:func:`report.replace_markdown_block`). Results are appended, one JSON object per line, to
``<out_dir>/<benchmark>.jsonl`` as each cell finishes; :class:`ResultStore` skips cells whose key is
already there, so an interrupted ``--all`` run resumes where it stopped (Stodden et al. 2016,
"Enhancing reproducibility for computational methods", Science 354:1240, for the practice).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from report import markdown_table

from samplers.atomic import atomic_output

__all__ = [
    "BenchSettings",
    "CallMeter",
    "ResultStore",
    "fmt",
    "mean_sd",
    "mean_or_nan",
    "meter_calls",
    "write_block",
]


@dataclass
class BenchSettings:
    """Run-wide settings of the suite (from the command line of ``scripts/benchmarks/run.py``).

    ``quick``: tiny sizes, one seed, few steps (a smoke run); ``seeds``: instances per cell (None:
    each benchmark's default, 20 for the GMM and imaging tables); ``out_dir``: where the JSON-lines
    results go; ``markdown``: the file whose blocks are replaced (None: no Markdown);
    ``threads``: ``torch.set_num_threads``; ``command``: the command line printed above each table;
    ``device``: where the sub-benchmarks that support it run (``navier-stokes``: on ``cuda`` at
    InverseBench's budget, on the CPU at the CPU-sized budget of its BENCHMARKS.md table).
    """

    quick: bool = False
    seeds: int | None = None
    out_dir: Path = Path("data/benchmarks/suite")
    markdown: Path | None = None
    threads: int = 1
    command: str = "python scripts/benchmarks/run.py --all"
    device: str = "cpu"
    log: object = print
    extra: dict = field(default_factory=dict)

    def n_seeds(self, full: int) -> int:
        """Instances per cell: ``--seeds`` if given, else 1 in quick mode and ``full`` otherwise."""
        if self.seeds is not None:
            return int(self.seeds)
        return 1 if self.quick else int(full)

    def store(self, name: str) -> ResultStore:
        """The result store ``<out_dir>/<name>.jsonl`` (``<name>-quick.jsonl`` in quick mode)."""
        return ResultStore(Path(self.out_dir) / f"{name}{'-quick' if self.quick else ''}.jsonl")


class ResultStore:
    """Append-only JSON-lines results with resume: a record is skipped when its ``key`` is present.

    ``key`` is a JSON-able dict naming the cell (benchmark, problem, sampler, seed, settings);
    two keys are equal when their canonical JSON (sorted keys) is equal.
    """

    def __init__(self, path):
        self.path = Path(path)
        lines, bad = self._read()
        if bad:
            warnings.warn(f"{self.path}: skipped unreadable line(s) {', '.join(map(str, bad))} (a run killed while "
                          "writing?); their cells are re-run", RuntimeWarning, stacklevel=2)
        self._set_records([rec for _, rec in lines])

    def _read(self) -> tuple[list[tuple[str, dict]], list[int]]:
        """The file's readable lines with their records, and the numbers of the unreadable ones."""
        lines, bad = [], []
        if self.path.exists():
            for i, line in enumerate(self.path.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        lines.append((line, json.loads(line)))
                    except json.JSONDecodeError:
                        bad.append(i)
        return lines, bad

    def _set_records(self, records: list[dict]) -> None:
        self._records = records
        self._done = {self._canon(r["key"]) for r in records if "key" in r}

    @staticmethod
    def _canon(key: dict) -> str:
        return json.dumps(key, sort_keys=True, default=str)

    def done(self, key: dict) -> bool:
        """Whether a record with this key is stored."""
        return self._canon(key) in self._done

    def add(self, key: dict, record: dict) -> dict:
        """Append ``{"key": key, **record}`` as one line (flushed at once) and return it."""
        rec = {"key": key, **record}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(rec, default=float) + "\n"
        with self._locked(), open(self.path, "a+b") as f:
            if f.seek(0, os.SEEK_END) > 0:  # a line cut short by a killed run stays alone on its line (skipped on load)
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode())  # one write on an O_APPEND file: processes sharing the store do not interleave
        self._records.append(rec)
        self._done.add(self._canon(key))
        return rec

    def records(self, **match) -> list[dict]:
        """Stored records whose key contains every ``match`` item."""
        return [r for r in self._records if all(r.get("key", {}).get(k) == v for k, v in match.items())]

    @staticmethod
    def _selected(key: dict, match: dict) -> bool:
        """Whether ``key`` has every ``match`` item; a list, tuple, set or range value matches any member."""
        for k, v in match.items():
            if k not in key:
                return False
            if isinstance(v, (list, tuple, set, frozenset, range)):
                if key[k] not in v:
                    return False
            elif key[k] != v:
                return False
        return True

    @contextlib.contextmanager
    def _locked(self):
        """Exclusive lock on ``<store>.lock`` (POSIX ``flock``; no lock where ``fcntl`` is missing) around an
        append or a rewrite, so a :meth:`discard` in one process loses no line appended by another."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def discard(self, **match) -> int:
        """Remove the stored records whose key matches (as :meth:`_selected`: a list value matches any
        member) so that their cells run again, e.g. after a change to one method's code; returns how many.

        The file is re-read under the lock (lines other processes appended since this store was loaded
        are kept) and replaced atomically (:func:`samplers.atomic.atomic_output`); unreadable lines
        are dropped with it. A resumed run must not discard again, or it re-runs the cells it finished.
        """
        if not match:
            raise ValueError("discard needs at least one key item to match (refusing to empty the store)")
        if not self.path.exists():
            return 0
        with self._locked():
            lines, _ = self._read()
            kept = [(line, rec) for line, rec in lines if not self._selected(rec.get("key", {}), match)]
            dropped = len(lines) - len(kept)
            if dropped:
                with atomic_output(self.path, overwrite=True) as tmp:
                    tmp.write_text("".join(f"{line}\n" for line, _ in kept))
        self._set_records([rec for _, rec in kept])
        return dropped


class CallMeter:
    """Counts and times the calls of one function, including the backward pass through its output.

    ``calls``: number of calls; ``items``: batch items processed (first argument's leading size);
    ``seconds``: wall time inside the calls plus, when the output takes part in a backward pass,
    the time between the gradient reaching the output and leaving the input (autograd hooks), so a
    vector-Jacobian product through the network is charged to the network.
    """

    def __init__(self):
        self.calls = 0
        self.items = 0
        self.seconds = 0.0
        self._bwd_start = None

    def wrap(self, fn):
        """``fn`` with metering (a new function; ``fn`` is unchanged)."""
        def timed(x, *args, **kwargs):
            self.calls += 1
            self.items += int(x.shape[0]) if getattr(x, "ndim", 0) else 1
            track = torch.is_grad_enabled() and isinstance(x, torch.Tensor) and x.requires_grad
            if track:
                x = x.view_as(x)
                x.register_hook(self._bwd_end)
            t0 = time.perf_counter()
            out = fn(x, *args, **kwargs)
            self.seconds += time.perf_counter() - t0
            if track and isinstance(out, torch.Tensor) and out.requires_grad:
                out = out.view_as(out)
                out.register_hook(self._bwd_begin)
            return out
        return timed

    def _bwd_begin(self, grad):
        self._bwd_start = time.perf_counter()
        return grad

    def _bwd_end(self, grad):
        if self._bwd_start is not None:
            self.seconds += time.perf_counter() - self._bwd_start
            self._bwd_start = None
        return grad


@contextlib.contextmanager
def meter_calls(obj, method: str):
    """Meter ``obj.<method>`` (an instance attribute shadows the class method) for the ``with`` block.

    Example::

        with meter_calls(prior, "denoise") as net, meter_calls(forward_model, "forward") as fwd:
            post = sampler.sample(problem, prior, 4)
        share = (net.seconds + fwd.seconds) / wall
    """
    meter = CallMeter()
    had = method in vars(obj)
    original = getattr(obj, method)
    object.__setattr__(obj, method, meter.wrap(original))
    try:
        yield meter
    finally:
        if had:
            object.__setattr__(obj, method, original)
        else:
            object.__delattr__(obj, method)


def write_block(settings: BenchSettings, key: str, heading: str, body: str) -> str:
    """Prefix ``body`` with the command and replace block ``key`` of ``settings.markdown`` (if any)."""
    return markdown_table(settings.command, body, settings.markdown, key=key, heading=heading)


def fmt(v, digits: int = 3) -> str:
    """A table cell: numbers with ``digits`` decimals, None / NaN as '-'."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f != f:
        return "-"
    return f"{f:.{digits}f}"


def mean_sd(values, digits: int = 3) -> str:
    """A table cell ``"mean ± sd"`` of ``values`` with ``digits`` decimals (sd 0 for a single value)."""
    vals = [float(v) for v in values]
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.fmean(vals):.{digits}f} ± {sd:.{digits}f}"


def mean_or_nan(values) -> float:
    """Mean of the finite numbers in ``values`` (NaN when none)."""
    vals = [float(v) for v in values if v is not None and float(v) == float(v)]
    return sum(vals) / len(vals) if vals else float("nan")
