"""Fuzz the ``inverse`` command line: N generated bad command lines, in-process, with a report.

    python scripts/fuzz.py --cases 500 --seed 0 --report fuzz-report.json

Each case (``tests/reliability/fuzz_cases.py``: every subcommand's flags with bad values, corrupted
measurement / posterior / prior / checkpoint / calibration files, special and over-long paths) runs
through ``inverse.cli.main`` in a fresh directory. The counts printed and written to the report:
cases, tracebacks, hangs, wrong exit codes, stderr not exactly one line, leftover files, changed
fixtures, pickle payloads that ran; plus slow refusals and file modes (reported, not failing). Each
failure class keeps up to five examples with a shell reproducer (``$FIX``: the fixture directory,
kept with ``--fixtures DIR``). Exit status 1 if any failing class is non-empty.

``--replay REPORT --index K`` reruns the K-th stored failure of a report and prints its output.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not installed

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.reliability.fuzz_cases import (  # noqa: E402
    FAILURE_CLASSES,
    Case,
    build_fixtures,
    command_cases,
    failures,
    preload,
    quotas,
    reproducer,
    run_case,
    valid_cases,
)

__all__ = ["main"]


def _encode(case: Case) -> dict:
    return {"kind": case.kind, "argv": list(case.argv), "codes": sorted(case.codes),
            "inputs": [[p, k, base64.b64encode(d).decode() if isinstance(d, bytes) else d] for p, k, d in case.inputs]}


def _decode(d: dict) -> Case:
    inputs = tuple((p, k, base64.b64decode(v) if k == "file" else v) for p, k, v in d["inputs"])
    return Case(d["kind"], tuple(d["argv"]), inputs, frozenset(d["codes"]))


def fuzz(n: int, seed_value: int, fixtures: Path, timeout: float, log=print, verbose: bool = False) -> dict:
    """Run ``n`` generated cases (plus the valid ones); the report as a dict."""
    preload()
    fx = build_fixtures(fixtures)
    work_root = Path(tempfile.mkdtemp(prefix="fuzz-work-"))
    counts, examples, kinds, commands = Counter(), {}, Counter(), Counter()
    seconds = []

    def one(case):
        i = counts["cases"]
        counts["cases"] += 1
        kinds[case.kind.split(" ")[0]] += 1
        commands[case.argv[0] if case.argv else ""] += 1
        work = work_root / f"c{i}"
        o = run_case(case, fx, work, timeout=timeout)
        seconds.append(o.seconds)
        shutil.rmtree(work, ignore_errors=True)
        if verbose:
            err = " | ".join(o.stderr.strip().splitlines())[:200]
            log(f"[{i}] exit {o.code} {o.seconds:.2f}s {case!r}\n      {err}")
        for cls, detail in failures(case, o).items():
            counts[cls] += 1
            ex = examples.setdefault(cls, [])
            if len(ex) < 5 and not any(e["kind"] == case.kind for e in ex):
                ex.append({"kind": case.kind, "detail": detail, "exit": str(o.code), "stderr": o.stderr[-2000:],
                           "traceback": o.exception[-3000:], "reproducer": reproducer(case), "case": _encode(case)})
            if cls in FAILURE_CLASSES:
                log(f"[{i}] {cls}: {case!r}: {detail}")
        if o.fixture_changed:  # start the next case from intact fixtures
            shutil.rmtree(fx.root, ignore_errors=True)
            fx.__dict__.update(build_fixtures(fixtures).__dict__)

    for case in valid_cases():
        one(case)

    t0 = time.perf_counter()
    for command, quota in quotas(n).items():  # every subcommand gets its share
        @seed(seed_value)
        @settings(max_examples=quota, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=command_cases(command, fx))
        def generated(case):
            one(case)

        generated()
    shutil.rmtree(work_root, ignore_errors=True)
    return {"cases": counts["cases"], "seed": seed_value, "seconds": round(time.perf_counter() - t0, 1),
            "counts": {c: counts[c] for c in FAILURE_CLASSES + ("slow", "mode")},
            "slowest_s": round(max(seconds), 2), "by_command": dict(commands), "by_defect": dict(kinds),
            "examples": examples}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=500, help="generated cases (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", default=None, help="write the report as JSON here")
    p.add_argument("--fixtures", default=None, help="keep the fixture files in this directory (default: temporary)")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    p.add_argument("--verbose", action="store_true", help="print every case, its exit code and stderr")
    p.add_argument("--replay", default=None, metavar="REPORT", help="rerun a stored failure of this report")
    p.add_argument("--index", type=int, default=0, help="with --replay: which failure (in report order)")
    args = p.parse_args(argv)
    fixtures = Path(args.fixtures) if args.fixtures else Path(tempfile.mkdtemp(prefix="fuzz-fixtures-"))
    if args.replay:
        report = json.loads(Path(args.replay).read_text())
        stored = [e for cls in report["examples"].values() for e in cls]
        case = _decode(stored[args.index]["case"])
        preload()
        fx = build_fixtures(fixtures)
        o = run_case(case, fx, Path(tempfile.mkdtemp()) / "w", timeout=args.timeout)
        print(f"{case!r}\nexit {o.code} in {o.seconds:.2f} s\n--- stderr\n{o.stderr}\n--- traceback\n{o.exception}"
              f"\n--- failures\n{json.dumps(failures(case, o), indent=1)}")
        return 0
    report = fuzz(args.cases, args.seed, fixtures, args.timeout, verbose=args.verbose)
    if not args.fixtures:
        shutil.rmtree(fixtures, ignore_errors=True)
    c = report["counts"]
    print(f"cases {report['cases']} (seed {args.seed}, {report['seconds']} s): tracebacks {c['traceback']}, "
          f"hangs {c['hang']}, wrong exit codes {c['wrong_exit_code']}, stderr not one line "
          f"{c['stderr_not_one_line']}, leftover files {c['leftover_files']}, fixtures changed "
          f"{c['fixture_changed']}, pickle ran {c['code_ran']}; slow refusals {c['slow']}, file modes {c['mode']}")
    for cls, ex in report["examples"].items():
        for e in ex:
            print(f"  {cls}: {e['kind']}: {e['detail'][:160]}\n      {e['reproducer'][:300]}")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1))
    return 1 if any(c[k] for k in FAILURE_CLASSES) else 0


if __name__ == "__main__":
    sys.exit(main())
