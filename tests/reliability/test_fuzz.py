"""Fuzzing: hypothesis-generated bad inputs against the command line and the NetCDF readers.

Every input must end cleanly: the command line with exit code 2 (1 for an environment failure), one
line on stderr, no traceback and no output file; the readers with a ``ValueError`` or
``FileNotFoundError`` (or a subclass) whose message is one line. Each test counts the inputs it ran;
together they run at least :data:`MIN_TOTAL`. The per-subcommand cases come from
:mod:`tests.reliability.fuzz_cases`, which ``scripts/fuzz.py`` runs standalone.
"""

import contextlib
import io
import json
import shutil
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from inverse.calibration.io import read_data, write_data
from inverse.calibration.models import MODELS, T2Relaxation
from inverse.cli import main
from inverse.measurements import open_measurements
from inverse.problems import PROBLEMS
from samplers import SAMPLERS, Posterior, open_posterior

from . import fuzz_cases

# a reader that leaves "Exception ignored in ..." noise behind (a traceback on stderr) fails the test
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

#: inputs each fuzz test must run, and their sum (at least 500 per run)
SUBCOMMAND_CASES = 400
QUOTA = {"readers": 160, "command_line": 140, "subcommands": SUBCOMMAND_CASES}
MIN_TOTAL = 500
COUNTS: dict[str, int] = {}

_BASE = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])


def fuzz(n: int) -> settings:
    """Deterministic hypothesis settings running ``n`` examples."""
    return settings(_BASE, max_examples=n)

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY\x01\x00"
COMMANDS = {"demo", "train-prior", "train-surrogate", "simulate", "reconstruct", "calibrate", "plot", "priors",
            "version"}


# ------------------------------------------------------------------ valid files to corrupt
@pytest.fixture(scope="module")
def valid(tmp_path_factory, ct_files):
    """Bytes and datasets of one valid file per reader."""
    import xarray as xr

    d = tmp_path_factory.mktemp("valid")
    y_path, prior = ct_files
    post = Posterior(torch.randn(3, 1, 4, 4, dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                     {"nfe": 3}, {"seed": 0}, truth=torch.zeros(1, 4, 4, dtype=torch.float64))
    p_path = post.to_netcdf(d / "p.nc")
    m = T2Relaxation()
    c_path = write_data(d / "c.nc", m, m.simulate(m.default_truth(), 0.02, seed=0), sigma=0.02,
                        truth=m.default_truth())
    out = {}
    for name, path in (("measurements", y_path), ("posterior", p_path), ("calibration", c_path)):
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            out[name] = (Path(path).read_bytes(), ds.load())
    out["prior"] = prior
    out["y_path"] = y_path
    return out


READERS = {"measurements": open_measurements, "posterior": open_posterior, "calibration": read_data}

JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                       lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                       max_leaves=6)


#: HDF5 attributes cannot hold NUL characters (the writer, not the reader, would fail)
NO_NUL_TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=12)


class Blob(bytes):
    """File contents that print as their length (hypothesis reports stay readable)."""

    def __repr__(self):
        return f"<{len(self)} bytes>"


class Valid(tuple):
    """``(bytes, dataset)`` of a valid file, printed by name only."""

    def __repr__(self):
        return "<valid file>"


@st.composite
def corrupted(draw, valid: tuple):
    """``(kind, bytes)``: random bytes, a file with a right magic number, truncation, byte flips, or a
    well-formed NetCDF whose variables or attributes are wrong."""
    valid_bytes, dataset = valid
    kind = draw(st.sampled_from(["random", "magic", "truncated", "flipped", "attribute", "variable"]))
    if kind == "random":
        return kind, Blob(draw(st.binary(max_size=600)))
    if kind == "magic":
        return kind, Blob(HDF5_MAGIC + draw(st.binary(max_size=600)))
    if kind == "truncated":
        return kind, Blob(valid_bytes[:draw(st.integers(0, len(valid_bytes) - 1))])
    if kind == "flipped":
        b = bytearray(valid_bytes)
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return kind, Blob(b)
    ds = dataset.copy(deep=True)
    if kind == "attribute":
        key = draw(st.sampled_from(sorted(ds.attrs) + ["format", "problem", "model"]))
        value = draw(st.one_of(NO_NUL_TEXT, JSONISH.map(json.dumps), st.integers(-5, 5)))
        ds.attrs[key] = value
    else:
        var = draw(st.sampled_from(sorted(ds.data_vars)))
        how = draw(st.sampled_from(["drop", "nan", "inf", "shape", "rename", "strings"]))
        if how == "drop":
            ds = ds.drop_vars(var)
        elif how in ("nan", "inf"):
            a = np.array(ds[var].values, dtype=np.float64)
            a.reshape(-1)[draw(st.integers(0, a.size - 1))] = np.nan if how == "nan" else -np.inf
            ds[var] = (ds[var].dims, a)
        elif how == "shape":
            dim = draw(st.sampled_from(ds[var].dims))
            ds = ds.isel({dim: slice(0, max(1, ds.sizes[dim] - draw(st.integers(1, 3))))})
            assume(ds.sizes[dim] != dataset.sizes[dim])
        elif how == "rename":
            ds = ds.rename({var: var + "_"})
        else:
            ds[var] = (ds[var].dims, np.full(ds[var].shape, "x", dtype=object))
    buf = Path(tempfile.mkdtemp()) / "f.nc"
    try:
        ds.to_netcdf(buf, engine="h5netcdf")
        return kind, Blob(buf.read_bytes())
    finally:
        shutil.rmtree(buf.parent, ignore_errors=True)


def _check_reader(reader, path):
    """The reader returns, or raises ValueError / FileNotFoundError with a one-line message."""
    try:
        reader(path)
    except (ValueError, FileNotFoundError) as e:
        assert str(e) and "\n" not in str(e), repr(e)
        return "error"
    return "ok"


def test_readers_refuse_corrupt_files_cleanly(valid, tmp_path):
    """open_measurements, open_posterior and the calibration reader on >= 160 corrupted files."""
    count, outcomes = 0, {"error": 0, "ok": 0}

    @fuzz(QUOTA["readers"])
    @given(data=st.data())
    def one(data):
        nonlocal count
        name = data.draw(st.sampled_from(sorted(READERS)))
        _kind, blob = data.draw(corrupted(Valid(valid[name])))
        path = tmp_path / f"fuzz-{count}.nc"  # a new name: HDF5 keeps failed files open
        path.write_bytes(blob)
        outcomes[_check_reader(READERS[name], path)] += 1
        count += 1

    one()
    COUNTS["readers"] = count
    assert count >= QUOTA["readers"]
    assert outcomes["error"] >= 0.8 * count  # almost every corruption is detected, not just survived
    for reader in READERS.values():  # and the plain cases
        with pytest.raises(FileNotFoundError):
            reader(tmp_path / "missing.nc")
        with pytest.raises((ValueError, IsADirectoryError)):
            reader(tmp_path)


# ------------------------------------------------------------------ the command line
NAME = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12)
TEXT = st.text(max_size=16)
BAD_INT = st.one_of(st.integers(max_value=0).map(str), st.sampled_from(["2.5", "nan", "inf", "-inf", "1e999", "[1]",
                                                                        '{"a": 1}', "\"x\"", "abc", ""]))
BAD_FLOAT = st.one_of(st.floats(max_value=-1e-6, allow_nan=False).map(repr),
                      st.sampled_from(["nan", "[1]", '{"a": 1}', "\"x\"", "abc", "null"]))


def _argv_cases(valid, out: Path, scratch: Path):
    """A strategy of ``(description, argv)``: each argv has at least one defect that must be refused."""
    y, prior = str(valid["y_path"]), str(valid["prior"])
    ct = ["simulate", "--problem", "ct", "-o", "size=16", "-o", "angles=4", "--out", str(out)]
    rec = ["reconstruct", y, "--prior", prior, "--steps", "1", "--num-samples", "1", "--out", str(out), "--quiet"]

    def unknown_command(args):
        return ("unknown command", args)

    def blob_file(suffix):
        def make(blob):
            p = scratch / f"input{suffix}"
            p.write_bytes(blob)
            return p
        return make

    blobs = st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: HDF5_MAGIC + b),
                      st.binary(max_size=300).map(lambda b: NPY_MAGIC + b),
                      st.integers(0, len(valid["measurements"][0]) // 2).map(lambda n: valid["measurements"][0][:n])
                      ).map(Blob)
    return st.one_of(
        st.tuples(NAME.filter(lambda s: s not in COMMANDS and not s.startswith("-")), st.lists(TEXT, max_size=3))
        .map(lambda t: unknown_command([t[0], *t[1]])),
        NAME.filter(lambda s: s not in PROBLEMS).map(
            lambda n: ("unknown problem", ["simulate", "--problem", n, "--out", str(out)])),
        st.tuples(NAME.filter(lambda s: s.strip().replace("-", "_") not in ("size", "angles")), TEXT).map(
            lambda kv: ("unknown option", ct + ["-o", f"{kv[0]}={kv[1]}"])),
        TEXT.filter(lambda s: "=" not in s).map(lambda s: ("option without =", ct + ["-o", s])),
        st.tuples(st.sampled_from(["size", "angles"]), BAD_INT).map(
            lambda kv: ("bad option value", ct + ["-o", f"{kv[0]}={kv[1]}"])),
        st.tuples(st.sampled_from(["--noise-std", "--noise-rel"]),
                  st.one_of(st.floats(max_value=0).map(repr), st.sampled_from(["nan", "inf", "-inf", "x", ""]))).map(
            lambda kv: ("bad noise level", ct + [kv[0], kv[1]])),
        st.tuples(st.sampled_from([".npy", ".nc", ".png", ".txt", ".jpg", ""]), blobs).map(
            lambda t: ("corrupt truth file", ct + ["--truth", str(blob_file(t[0])(t[1]))])),
        blobs.map(lambda b: ("corrupt measurement file",
                             ["reconstruct", str(blob_file(".nc")(b)), "--num-samples", "0", "--out", str(out)])),
        NAME.filter(lambda s: s not in SAMPLERS).map(lambda n: ("unknown sampler", rec + ["--sampler", n])),
        st.tuples(st.sampled_from(["--num-samples", "--steps", "--checkpoint-every"]), BAD_INT).map(
            lambda kv: ("bad count", rec + [kv[0], kv[1]] + (["--checkpoint", str(scratch / "c")]
                                                               if kv[0] == "--checkpoint-every" else []))),
        st.one_of(st.tuples(st.sampled_from(["num_steps", "bogus"]), BAD_INT),
                  st.tuples(st.sampled_from(["zeta", "rho"]), BAD_FLOAT)).map(
            lambda kv: ("bad sampler option", rec + ["-s", f"{kv[0]}={kv[1]}"])),
        NAME.filter(lambda s: not Path(s).exists() and not s.startswith("gaussian")).map(
            lambda n: ("unknown prior", rec[:3] + [n] + rec[4:])),
        st.sampled_from(["gaussian:0", "gaussian:-1", "gaussian:x", "gaussian:nan"]).map(
            lambda n: ("bad gaussian prior", rec[:3] + [n] + rec[4:])),
        st.sampled_from(["tpu", "cuda:9", "gpu", "cpu:x", "", "metal"]).map(
            lambda d: ("bad device", rec + ["--device", d])),
        blobs.map(lambda b: ("corrupt file to plot", ["plot", str(blob_file(".nc")(b))])),
        blobs.map(lambda b: ("corrupt calibration data",
                             ["calibrate", "--data", str(blob_file(".nc")(b)), "--out", str(out)])),
        NAME.filter(lambda s: s not in MODELS).map(
            lambda n: ("unknown calibration model", ["calibrate", "--model", n, "--simulate", "--out", str(out)])),
        st.tuples(NAME, st.sampled_from(["0", "-1"])).map(
            lambda t: ("bad training run", ["train-prior", "--dataset", t[0], "--steps", t[1], "--out", str(out)])),
    )


def _run_main(argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse
            code = e.code
    return code, err.getvalue()


def test_command_line_refuses_bad_input_cleanly(valid, tmp_path):
    """>= 140 generated bad command lines: exit 2, one line on stderr, no traceback, no output."""
    count, kinds = 0, {}
    out, scratch = tmp_path / "out" / "result.nc", tmp_path / "scratch"
    out.parent.mkdir()
    scratch.mkdir()

    @fuzz(QUOTA["command_line"])
    @given(case=_argv_cases(valid, out, scratch))
    def one(case):
        nonlocal count
        what, argv = case
        code, err = _run_main(argv)
        left = list(out.parent.iterdir())
        for p in left:  # keep later examples independent of a failure here
            p.unlink()
        assert code == 2, (what, argv, code, err)
        assert err.strip() and err.strip().count("\n") == 0 and "Traceback" not in err, (what, argv, err)
        assert left == [], (what, argv)  # no output, no temporary file
        count += 1
        kinds[what] = kinds.get(what, 0) + 1

    one()
    assert len(kinds) >= 12, kinds  # the strategy reaches most kinds of defect
    y, prior = str(valid["y_path"]), str(valid["prior"])
    rec = ["reconstruct", y, "--prior", prior, "--steps", "1", "--num-samples", "1", "--out", str(out), "--quiet"]
    ct = ["simulate", "--problem", "ct", "-o", "size=16", "--out", str(out)]
    npy = scratch / "t.npy"
    npy.write_bytes(NPY_MAGIC + b"{'descr': '<f8', 'fortran_order': False, 'shape': (16, 16), }")
    for case in (rec + ["-s", "num_steps=1e999"], rec + ["--device", "tpu"], rec + ["--threads", "0"],
                 ct + ["-o", "size=1e999"], ct + ["-o", "angles=nan"], ct + ["--noise-std", "inf"],
                 ct + ["--truth", str(npy)], rec + ["--resume"], rec + ["--checkpoint", str(scratch)]):
        one.hypothesis.inner_test(("regression", case))  # inputs that once ended in a traceback
    COUNTS["command_line"] = count
    assert count >= QUOTA["command_line"]


# ------------------------------------------------------------------ every subcommand (fuzz_cases)
#: what fails the subcommand fuzz: fuzz_cases.FAILURE_CLASSES and a file mode that ignores the umask
STRICT = fuzz_cases.FAILURE_CLASSES + ("mode",)
SUBCOMMAND_QUOTA = fuzz_cases.quotas(SUBCOMMAND_CASES)


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """The valid files the generated cases refer to (``{Y}``, ``{PRIOR}``, ...), built once."""
    fuzz_cases.preload()
    return fuzz_cases.build_fixtures(tmp_path_factory.mktemp("fuzz-fixtures"))


def _report(bad) -> str:
    """One example per (failure class, kind of defect), with a shell reproducer."""
    seen, lines = set(), []
    for case, cls, detail in bad:
        if (cls, case.kind) not in seen:
            seen.add((cls, case.kind))
            lines.append(f"{cls}: {case!r}\n    {detail[:300]}\n    {fuzz_cases.reproducer(case)[:400]}")
    return "\n".join(lines[:12])


@pytest.mark.parametrize("command", sorted(SUBCOMMAND_QUOTA))
def test_every_subcommand_refuses_generated_bad_input(command, fx, tmp_path):
    """Each subcommand (and unknown ones) on its share of SUBCOMMAND_CASES generated command lines: no
    traceback or hang, exit 2 (1 for an environment failure), one line on stderr, nothing left in the
    working directory, fixtures untouched, no pickle run; all failures are listed, not just the first."""
    bad, count = [], 0

    @settings(_BASE, max_examples=SUBCOMMAND_QUOTA[command], phases=[Phase.generate])
    @given(case=fuzz_cases.command_cases(command, fx))
    def one(case):
        nonlocal count
        o = fuzz_cases.run_case(case, fx, tmp_path / f"c{count}", timeout=20)
        shutil.rmtree(tmp_path / f"c{count}", ignore_errors=True)
        count += 1
        bad.extend((case, cls, detail) for cls, detail in fuzz_cases.failures(case, o).items() if cls in STRICT)

    one()
    COUNTS["subcommands"] = COUNTS.get("subcommands", 0) + count
    assert not bad, f"{len(bad)} failures in {count} cases of {command}:\n{_report(bad)}"
    # hypothesis stops early only when a command has fewer distinct cases than its share
    assert count >= min(SUBCOMMAND_QUOTA[command], 8)


@pytest.mark.parametrize("case", fuzz_cases.valid_cases(), ids=lambda c: " ".join(c.argv[:2]))
def test_cheap_valid_runs_succeed(case, fx, tmp_path):
    """The bases the fuzz mutates run: exit 0, no traceback, outputs readable by others (umask 022)."""
    o = fuzz_cases.run_case(case, fx, tmp_path / "w", timeout=60)
    bad = {k: v for k, v in fuzz_cases.failures(case, o).items() if k in STRICT}
    assert o.code == 0 and not bad, (o.code, bad, o.stderr[-2000:], o.exception[-3000:])


@pytest.mark.parametrize("case", fuzz_cases.regression_cases(),
                         ids=lambda c: f"{c.argv[0]} {' '.join(a for a in c.argv[-4:] if a != '--quiet')}"[:60])
def test_regression_cases_are_refused_cleanly(case, fx, tmp_path):
    """Command lines that once gave a traceback, a leftover folder, an accepted bad value or two lines."""
    o = fuzz_cases.run_case(case, fx, tmp_path / "w", timeout=60)
    bad = {k: v for k, v in fuzz_cases.failures(case, o).items() if k in STRICT}
    assert not bad, (bad, fuzz_cases.reproducer(case), o.exception[-2000:])


def test_the_fuzz_tests_run_at_least_500_inputs():
    """The quotas add up to at least 500 generated inputs; when the whole module ran, so did the inputs."""
    assert sum(QUOTA.values()) >= MIN_TOTAL
    assert sum(SUBCOMMAND_QUOTA.values()) >= SUBCOMMAND_CASES
    if set(COUNTS) == set(QUOTA):
        assert sum(COUNTS.values()) >= MIN_TOTAL
