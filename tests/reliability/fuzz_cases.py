"""Generated bad command lines for ``inverse``, shared by ``test_fuzz.py`` and ``scripts/fuzz.py``.

A :class:`Case` is an argument list plus the input files to create in a fresh working directory; every
generated case holds at least one defect that the command must refuse (an out-of-range, NaN, huge or
non-numeric number, an unknown name, a missing, special or corrupted input file, an unusable output
path, a bad ``KEY=VALUE``, an unknown or missing flag, two outputs on one path), mixed with valid-looking
arguments of a cheap run, so a command that validates before working refuses it in milliseconds.
:func:`cases` draws them (hypothesis) over every subcommand that :func:`inverse.cli.build_parser`
lists, reading each flag's type from the parser, so a new subcommand or flag is fuzzed without edits.
:func:`run_case` runs one in-process through :func:`inverse.cli.main`, capturing stdout and stderr at
the file-descriptor level, with a time limit and an address-space cap; :func:`failures` names what went
wrong: a traceback, a hang, an exit code other than 2 (1 for an environment failure such as ``/proc``),
anything but exactly one line on stderr, a file left in the working directory, a changed fixture.

Paths to the shared valid files are written as ``{Y}`` (measurements), ``{PRIOR}`` (a tiny EDM prior
directory), ``{POST}`` (a posterior), ``{CKPT}`` (a checkpoint of the cheap reconstruct run), ``{CAL}``
(calibration data) and ``{TRUTH}`` (a 16 x 16 ``.npy``) and resolved by :func:`run_case`.

Example::

    from hypothesis import given
    fx = build_fixtures(Path("fixtures"))
    @given(case=cases())
    def test(case):
        assert not failures(case, run_case(case, fx, Path("work")))
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import resource
import shutil
import signal
import string
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

__all__ = ["Case", "Outcome", "Fixtures", "build_fixtures", "cases", "command_cases", "quotas", "UNKNOWN",
           "valid_cases", "regression_cases", "run_case", "failures", "FAILURE_CLASSES", "reproducer", "preload",
           "command_names"]

#: failure classes that make a run fail (``slow`` and ``mode`` are reported only)
FAILURE_CLASSES = ("traceback", "hang", "wrong_exit_code", "stderr_not_one_line", "leftover_files",
                   "fixture_changed", "code_ran")
SLOW_S = 3.0  # a refusal slower than this did work before validating
MARKER = "PWNED"  # a pickle payload creates this file in the working directory
LONG = "n" * 300  # longer than NAME_MAX (255)


# ------------------------------------------------------------------ cases
@dataclass(frozen=True)
class Case:
    """``argv`` run in a fresh directory after creating ``inputs`` there.

    ``inputs``: ``(relative path, kind, data)`` with kind ``file`` (data: bytes), ``copy`` (data: a
    fixture key such as ``"Y"``, or ``"PRIOR"`` for a whole directory), ``dir``, ``fifo`` or
    ``symlink`` (data: the link target). ``codes``: the accepted exit codes; 0 among them means the
    defect may be harmless (e.g. a flipped byte in a tensor), and then outputs are allowed.
    """

    kind: str
    argv: tuple
    inputs: tuple = ()
    codes: frozenset = frozenset({2})

    def __repr__(self):
        ins = ", ".join(f"{p}:{k}" + (f"({len(d)}B)" if isinstance(d, bytes) else f"({d})" if d else "")
                        for p, k, d in self.inputs)
        tail = f" [inputs {ins}]" if ins else ""
        return f"Case({self.kind}: inverse {' '.join(map(_quote, self.argv))}{tail})"


def _quote(a: str) -> str:
    if len(a) > 40:
        a = f"{a[:10]}...({len(a)} chars)"
    return a if a and all(c.isalnum() or c in "-_=./{}:," for c in a) else repr(a)


#: valid, cheap argument lists of each command, the base every mutation starts from
BASES = {
    "demo": ["demo", "--toy", "--num-samples", "4", "--steps", "2", "--out", "d", "--quiet"],
    "train-prior": ["train-prior", "--dataset", "phantoms", "--size", "16", "--num-examples", "8", "--widths", "8",
                    "8", "--steps", "1", "--batch-size", "4", "--out", "p", "--quiet"],
    "simulate": ["simulate", "--problem", "ct", "-o", "size=16", "-o", "angles=4", "--out", "o.nc"],
    "reconstruct": ["reconstruct", "{Y}", "--prior", "{PRIOR}", "--steps", "1", "--num-samples", "1", "--out",
                    "o.nc", "--quiet"],
    "calibrate": ["calibrate", "--data", "{CAL}", "--chains", "1", "--warmup", "2", "--samples", "2", "--out", "o.nc",
                  "--quiet"],  # calibration data, not a posterior
    "train-surrogate": ["train-surrogate", "--resolution", "8", "--sensors", "2", "--modes", "4", "--num-examples",
                        "8", "--steps", "1", "--hidden", "4", "--out", "s", "--quiet"],
    "reconstruct-batch": ["reconstruct-batch", "{Y}", "--prior", "{PRIOR}", "--steps", "1", "--num-samples", "1",
                          "--out-dir", "od", "--quiet"],
    "plot": ["plot", "post.nc", "--out", "figs"],
    "priors": ["priors"],
    "version": ["version"],
    "sample-prior": ["sample-prior", "{PRIOR}", "--num-samples", "1", "--steps", "2", "--out", "o.nc"],
    "import": ["import", "--problem", "ct", "sino.npy", "--angles", "0:180:30", "--noise-std", "0.01", "--any-size",
               "--out", "o.nc"],
}
BASE_INPUTS = {"plot": (("post.nc", "copy", "POST"),), "import": (("sino.npy", "copy", "SINO"),)}
#: string flags with their own refused values (and the exit codes allowed)
TEXT_BAD = {"angles": (["0:180:0", "abc", "180:0:6", "nan", "", "0:1e9:1e-9", "0:180:30:1", "1e999"], {2}),
            "slice": (["-999", "abc", "999999", "", "1.5"], {2}),
            "shape": (["0,64,64", "1,-1,64", "abc", "1,100000,100000", "", "nan"], {2}),
            "data_range": (["1,0", "nan,1", "abc", "0", "0,inf", ""], {2}),
            "variable": (["nope", "", "a\nb"], {0, 2})}
#: the flags not to mutate (their bad values are legitimately accepted or need a cluster)
SKIP_FLAGS = {"--name", "--ray-address", "--help", "-h"}

NAME = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12)
INT_BAD = ["-1", "-7", str(2**70), str(-2**70)]  # parsed as integers: the command itself must refuse them
INT_UNPARSEABLE = ["2.5", "nan", "inf", "", "abc", "0x10", "1e3", "[1]"]  # argparse refuses these
ZERO_OK = {"seed", "warmup", "quality_samples", "patches", "num_workers"}  # 0 may be legitimate
HUGE_BAD = {"num_samples", "size", "num_examples", "threads", "devices", "num_nodes", "batch_size", "widths", "hidden",
            "resolution", "sensors", "modes", "chains", "samples"}  # 10**12 must be refused, not allocated
FLOAT_BAD = ["nan", "inf", "-inf", "1e999", "", "abc", "[1]", "-1"]
ZERO_BAD_FLOAT = {"noise_rel", "noise_std", "lr", "prior_sigma", "max_minutes"}
NAME_FLAGS = {"sampler", "prior", "problem", "model", "dataset", "strategy", "accelerator", "device", "data_device",
              "chain_method", "kind", "init", "backend", "format"}
IN_FLAGS = {"measurements", "truth", "data", "file", "input", "inputs", "source", "path", "prior_dir", "mask",
            "coil_maps"}
OUT_FLAGS = {"out", "figure", "checkpoint", "out_dir", "data_cache"}
#: ``-o``/``-s`` keys with a numeric value, per command
KV_KEYS = {"simulate": ["size", "angles"], "import": ["size", "angles"], "reconstruct": ["num_steps", "zeta", "rho"],
           "reconstruct-batch": ["num_steps", "zeta", "rho"]}
KV_BAD = ["novalue", "=1", "bogus=1", "size=-1", "size=0", "size=100000", "angles=100000000", "size=nan", "size=[1]",
          "angles=1e999", f"size={2**70}", "rho=0", "zeta=nan", "num_steps=0", "num_steps=1e999", "angles=0"]
#: flags that a command may ignore in this base (an MRI-only flag of a CT import): success is fine too
CONTEXT = {("import", "slice"), ("import", "size"), ("import", "mask"), ("import", "coil_maps"),
           ("import", "variable"), ("import", "geometry"), ("reconstruct", "checkpoint_every"),
           ("sample-prior", "shape"), ("sample-prior", "data_range")} | {
    ("train-prior", d) for d in ("patches", "val_fraction", "normalise", "num_workers", "quality_samples")}  # --data
#: which fixture file a command's input flag expects (corruptions start from it)
INPUT_FIXTURE = {("reconstruct", "measurements"): "Y", ("reconstruct-batch", "measurements"): "Y",
                 ("plot", "file"): "POST", ("calibrate", "data"): "CAL", ("simulate", "truth"): "TRUTH",
                 ("import", "input"): "SINO"}


def _parser_actions():
    """``{command: [argparse actions]}`` from the real parser."""
    from inverse.cli import build_parser

    p = build_parser()
    sub = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
    return {name: list(sp._actions) for name, sp in sub.choices.items()}


def command_names() -> list[str]:
    """The subcommands of ``inverse``, as its parser lists them."""
    return sorted(_parser_actions())


def _dest_kind(a) -> str:
    d = a.dest
    if a.nargs == 0:
        return "flag"
    if a.choices is not None:
        return "choice"
    if a.type is int or d == "devices":
        return "int"
    if a.type is float or d in ("sigma", "target_accept"):
        return "float"
    if a.option_strings and a.option_strings[0] in ("-o", "-s") or d in ("option", "sampler_option"):
        return "kv"
    if d in ("truth", "prior") and a.nargs == "+":
        return "pairs"
    if d == "model_config":
        return "json"
    if d in OUT_FLAGS:
        return "out"
    if d in IN_FLAGS or (not a.option_strings and d != "command"):
        return "in"
    if d in NAME_FLAGS:
        return "name"
    if d in TEXT_BAD:
        return "textbad"
    return "text"


def _set(argv: list, flag: str, values: list) -> list:
    """``argv`` with ``flag`` set to ``values`` (replacing its first occurrence's values, else appended)."""
    argv = list(argv)
    if flag in argv and flag not in ("-o", "-s"):  # repeatable KEY=VALUE flags are appended
        i = argv.index(flag) + 1
        j = i
        while j < len(argv) and not (argv[j].startswith("--") or argv[j].startswith("-") and argv[j][1:2].isalpha()):
            j += 1
        return argv[:i] + values + argv[j:]
    return argv + [flag] + values


def _set_positional(argv: list, base: list, value: list) -> list:
    """Replace the first positional of the base (after the command name) by ``value``."""
    pos = next((i for i in range(1, len(base)) if not base[i].startswith("-") and not base[i - 1].startswith("-")),
               None)
    if pos is None or pos >= len(argv):
        return argv + value
    return argv[:pos] + value + argv[pos + 1:]


# --- corrupted file contents
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class Blob(bytes):
    """File contents that print as their length."""

    def __repr__(self):
        return f"<{len(self)} bytes>"


@st.composite
def corrupt_bytes(draw, valid: bytes):
    """Random bytes, an HDF5 signature and noise, a truncation, byte flips or an empty file of ``valid``."""
    how = draw(st.sampled_from(["random", "magic", "truncated", "flipped", "empty"]))
    if how == "random":
        return Blob(draw(st.binary(max_size=400)))
    if how == "magic":
        return Blob(HDF5_MAGIC + draw(st.binary(max_size=400)))
    if how == "empty" or not valid:
        return Blob(b"")
    if how == "truncated":
        return Blob(valid[:draw(st.integers(0, len(valid) - 1))])
    b = bytearray(valid)
    for _ in range(draw(st.integers(1, 6))):
        b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
    return Blob(b)


#: measurement-file attributes and values a command must refuse (``None``: delete the attribute)
Y_ATTRS = {
    "options": ['{"size": 16, "angles": 1000000000}', '{"size": 100000, "angles": 8}', '{"size": -1, "angles": 8}',
                "not json", "[]", '{"size": 16, "angles": 8, "bogus": 1}', '{"size": 16, "angles": NaN}'],
    "problem": ["", "bogus", "mri", None],
    "noise": ['{"class": "Gaussian", "sigma": 0}', '{"class": "Gaussian", "sigma": -1}',
              '{"class": "Gaussian", "sigma": NaN}', '{"class": "Bogus", "sigma": 1}', "{}", None],
    "format": ["inverse-measurements/99", "bogus", None],
}


@st.composite
def semantic_measurements(draw, valid: bytes):
    """A well-formed measurement file with one wrong attribute or a non-finite measurement."""
    import h5py
    import numpy as np

    d = Path(tempfile.mkdtemp())
    try:
        path = d / "y.nc"
        path.write_bytes(valid)
        with h5py.File(path, "r+") as f:
            if draw(st.integers(0, 4)) == 0:
                a = f["measurements"][...]
                a.reshape(-1)[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
                f["measurements"][...] = a
            else:
                key = draw(st.sampled_from(sorted(Y_ATTRS)))
                value = draw(st.sampled_from(Y_ATTRS[key]))
                if value is None:
                    del f.attrs[key]
                else:
                    f.attrs[key] = value
        return Blob(path.read_bytes())
    finally:
        shutil.rmtree(d, ignore_errors=True)


class _Evil:
    """Unpickling it opens ``MARKER`` for writing (creating the file): the proof that pickle ran."""

    def __reduce__(self):
        return open, (MARKER, "w")


def _evil_pickle() -> bytes:
    return pickle.dumps({"weight": _Evil()})


@st.composite
def corrupt_prior(draw, fx: Fixtures):
    """Inputs of a prior directory ``pd/`` with one file corrupted, removed or an unsafe weight file added."""
    files = sorted(p.name for p in fx.paths["PRIOR"].iterdir())
    how = draw(st.sampled_from(["remove", "corrupt", "pickle-weights", "pickle-index", "empty-dir"]))
    if how == "empty-dir":
        return (("pd", "dir", None),), frozenset({2})
    inputs = []
    target = draw(st.sampled_from(files))
    for name in files:
        data = (fx.paths["PRIOR"] / name).read_bytes()
        if name == target and how == "remove":
            continue
        if name == target and how == "corrupt":
            data = draw(corrupt_bytes(data))
        inputs.append((f"pd/{name}", "file", Blob(data)))
    if how == "pickle-weights":
        inputs.append((f"pd/{draw(st.sampled_from(['diffusion_pytorch_model.bin', 'model.pt', 'evil.ckpt']))}",
                       "file", Blob(_evil_pickle())))
    if how == "pickle-index":
        inputs.append(("pd/diffusion_pytorch_model.safetensors.index.json", "file",
                       Blob(b'{"metadata": {}, "weight_map": {"conv_in.weight": "evil.bin"}}')))
        inputs.append(("pd/evil.bin", "file", Blob(_evil_pickle())))
    # a removed card or a flipped byte in a number may leave a loadable prior
    return tuple(inputs), frozenset({2}) if how.startswith("pickle") else frozenset({0, 2})


@st.composite
def _bad_input_path(draw, command: str, dest: str, fx: Fixtures):
    """``(value, inputs, codes)``: a missing, special, over-long or corrupted input file."""
    key = INPUT_FIXTURE.get((command, dest))
    if dest == "prior" or (command == "sample-prior" and dest in ("prior", "name")):
        inputs, codes = draw(corrupt_prior(fx))
        return "pd", inputs, codes
    how = draw(st.sampled_from(["missing", "dir", "fifo", "zero", "devnull", "long", "empty", "corrupt", "corrupt",
                                "corrupt"]))
    if how == "missing":
        return "missing.nc", (), frozenset({2})
    if how == "dir":
        return draw(st.sampled_from([".", "adir"])), (("adir", "dir", None),), frozenset({2})
    if how == "fifo":
        return "fifo.nc", (("fifo.nc", "fifo", None),), frozenset({2})
    if how == "zero":
        return "zero.nc", (("zero.nc", "symlink", "/dev/zero"),), frozenset({2})
    if how == "devnull":
        return "/dev/null", (), frozenset({2})
    if how == "long":
        return LONG + ".nc", (), frozenset({2})
    if key == "Y" and draw(st.booleans()):  # a readable file whose content is wrong
        return "in.nc", (("in.nc", "file", draw(semantic_measurements(fx.data["Y"]))),), frozenset({2})
    valid = fx.data[key] if key else b""
    suffix = ".npy" if key in ("TRUTH", "SINO") or dest in ("mask", "coil_maps") else ".nc"
    # a flipped byte may hit tensor data and leave a valid file: then success is fine too
    return "in" + suffix, (("in" + suffix, "file", draw(corrupt_bytes(valid))),), frozenset({0, 2})


def _bad_output(draw, command: str, dest: str, is_dir: bool):
    """``(value, inputs, codes)``: an unusable output path (0 among the codes where a directory output may
    legitimately exist already or have its parents created)."""
    maybe = frozenset({0, 2}) if is_dir or dest == "data_cache" else frozenset({2})
    how = draw(st.sampled_from(["long", "nodir", "empty", "exists", "wrongtype", "proc", "longdir"]))
    if how == "long":
        return LONG + ("" if is_dir else ".nc"), (), frozenset({2})
    if how == "longdir":
        return LONG + "/o.nc", (), frozenset({2})
    if how == "nodir":
        return "nodir/sub/o" + ("" if is_dir else ".nc"), (), maybe
    if how == "empty":
        return "", (), frozenset({2})
    if how == "proc":
        return "/proc/o.nc", (), frozenset({1, 2})
    if how == "exists":  # an existing output, refused without --overwrite
        if is_dir:
            return "exists", (("exists/keep.txt", "file", Blob(b"keep")),), \
                frozenset({2}) if command == "train-prior" else maybe
        return "exists.nc", (("exists.nc", "file", Blob(b"keep")),), frozenset({2})
    if is_dir:  # a file where a directory is wanted, or the reverse
        return "afile", (("afile", "file", Blob(b"x")),), frozenset({2})
    return "adir", (("adir/keep.txt", "file", Blob(b"keep")),), frozenset({2})


@st.composite
def _bad_value(draw, command: str, action, fx: Fixtures):
    """``(flag or None, values, inputs, codes)`` that make ``action`` refuse."""
    kind, d = _dest_kind(action), action.dest
    flag = action.option_strings[0] if action.option_strings else None
    inputs, codes = (), frozenset({2})
    if kind == "flag":
        return f"{flag}=1", [], inputs, codes
    if kind == "int":
        pool = INT_BAD + ([] if d in ZERO_OK else ["0"]) + (["1000000000000"] if d in HUGE_BAD else [])
        v = draw(st.sampled_from(INT_UNPARSEABLE if draw(st.integers(0, 3)) == 0 else pool))
        if d == "seed" and v in ("-1", "-7"):
            codes = frozenset({0, 2})  # a negative seed may be accepted; it must not crash
        return flag, ["8", v] if action.nargs == "+" else [v], inputs, codes
    if kind == "float":
        pool = FLOAT_BAD + (["0"] if d in ZERO_BAD_FLOAT else []) + (["1.5"] if d == "target_accept" else [])
        return flag, [draw(st.sampled_from(pool))], inputs, codes
    if kind == "choice":
        return flag, [draw(st.sampled_from(["bogus", "", LONG]))], inputs, codes
    if kind == "kv":
        keys = KV_KEYS.get(command, ["bogus"])
        v = draw(st.one_of(st.sampled_from(KV_BAD),
                           st.tuples(st.sampled_from(keys), st.sampled_from(FLOAT_BAD[:-1])).map("=".join),
                           st.sampled_from([k + "=0" for k in keys if k != "zeta"]),  # zeta=0: no guidance, valid
                           NAME.filter(lambda s: "=" not in s)))
        return flag, [v], inputs, codes
    if kind == "pairs":
        if d == "truth":
            v = draw(st.sampled_from(["T2=nan", "bogus=1", "T2", "=1", "T2=inf", "T2=abc", "sigma=0.1", "T2=-5"]))
        else:
            v = draw(st.sampled_from(["T2=bogus:1", "T2=normal:0,-1", "T2=normal:x", "T2", "T2=lognormal:nan,1",
                                      "nope=normal:0,1", "T2=uniform:5,1"]))
        return flag, [v], inputs, codes
    if kind == "textbad":
        values, c = TEXT_BAD[d]
        return flag, [draw(st.sampled_from(values))], inputs, frozenset(c)
    if kind == "json":
        return flag, [draw(st.sampled_from(["not json", "[1]", '{"bogus": 1}', '{"num_layers": -1}', "null"]))], \
            inputs, codes
    if kind == "out":
        v, inputs, codes = _bad_output(draw, command, d, is_dir=d in ("out_dir",) or (d == "out" and command in (
            "demo", "train-prior", "train-surrogate", "plot")))
        return flag, [v], inputs, codes
    if kind == "in":
        v, inputs, codes = draw(_bad_input_path(command, d, fx))
        return flag, [v], inputs, codes
    if kind == "name":
        if d == "prior" and command in ("reconstruct", "reconstruct-batch", "sample-prior") and draw(st.booleans()):
            v, inputs, codes = draw(_bad_input_path(command, d, fx))
            return flag, [v], inputs, codes
        v = draw(st.one_of(NAME.map(lambda s: "zz" + s), st.sampled_from(["", LONG, "cuda:9", "meta", "tpu", "a\nb",
                                                                           "gaussian:0", "gaussian:nan"])))
        return flag, [v], inputs, codes
    return None


@st.composite
def _structural(draw, command: str, base: list, actions, fx: Fixtures):
    """An unknown flag, a missing required argument, an extra positional or the same path for two outputs."""
    how = draw(st.sampled_from(["unknown-flag", "missing", "extra", "two-outputs", "checkpoint"]))
    required = [a for a in actions if a.required and a.option_strings]
    present = [a.option_strings[0] for a in required if a.option_strings[0] in base]
    if how == "missing" and present:
        i = base.index(draw(st.sampled_from(present)))
        return base[:i] + base[i + 2:], (), frozenset({2})
    if how == "extra" and command not in ("reconstruct-batch",):
        return base + ["extra-positional"], (), frozenset({2})
    if how == "two-outputs" and command == "reconstruct":
        return draw(st.sampled_from([base + ["--checkpoint", "o.nc"], base + ["--figure", "o.nc"],
                                     base + ["--figure", "nodir/f.png"], base + ["--resume"],
                                     base + ["--checkpoint", "c.st", "--checkpoint-every", "0"]])), (), frozenset({2})
    if how == "two-outputs" and command in ("reconstruct", "calibrate") and draw(st.booleans()):
        # the output is the input itself, even with --overwrite
        key, name = ("Y", "y.nc") if command == "reconstruct" else ("CAL", "cal.nc")
        argv = [name if a == "{" + key + "}" else a for a in base]
        return _set(argv, "--out", [name]) + ["--overwrite"], ((name, "copy", key),), frozenset({2})
    if how == "checkpoint" and command == "reconstruct":  # resume from a corrupted checkpoint of this run
        blob = draw(corrupt_bytes(fx.data["CKPT"]))
        return base + ["--checkpoint", "ck.st", "--resume"], (("ck.st", "file", blob),), frozenset({0, 2})
    if how == "two-outputs" and command == "calibrate":
        return draw(st.sampled_from([base + ["--simulate"], ["calibrate", "--simulate", "--out", "o.nc"],
                                     ["calibrate", "--model", "mri-t2", "--simulate", "--out", "o.nc", "--data",
                                      "{CAL}"]])), (), frozenset({2})
    return base + [draw(st.sampled_from(["--bogus", "--stepz", "-x", "--out-file"])), "1"], (), frozenset({2})


@st.composite
def case_of(draw, command: str, fx: Fixtures):
    """One case of ``command``: its base with one or two defects and maybe a harmless change. Exit 0 is
    accepted only when every defect may be harmless (a corrupted byte that a reader cannot see)."""
    actions = {a.dest: a for a in _parser_actions()[command]}
    base = list(BASES.get(command) or [command])
    inputs = list(BASE_INPUTS.get(command, ()))
    mutable = [a for d, a in sorted(actions.items()) if not (set(a.option_strings) & SKIP_FLAGS)
               and d not in ("help",) and _dest_kind(a) != "text"]
    # corrupted input files reach the deepest code: weight them most; '--quiet=1' is argparse's business
    weight = {"flag": 1, "in": 8}
    mutable = [a for a in mutable for _ in range(weight.get(_dest_kind(a), 3))]
    kinds, all_codes = [], {}  # a later value of the same flag replaces the earlier one, and its codes
    argv = base
    for _ in range(draw(st.integers(1, 2))):
        if not mutable or draw(st.integers(0, 4)) == 0:
            argv, ins, c = draw(_structural(command, argv, actions.values(), fx))
            kinds.append("structure")
            key = f"structure{len(kinds)}"
        else:
            a = draw(st.sampled_from(mutable))
            flag, values, ins, c = draw(_bad_value(command, a, fx))
            if (command, a.dest) in CONTEXT:
                c = c | {0}
            if flag is None:
                argv = _set_positional(argv, base, values)
            elif not values:
                argv = argv + [flag]
            else:
                argv = _set(argv, flag, values)
            kinds.append(f"{_dest_kind(a)}:{a.dest}")
            key = a.dest if a.nargs != 0 and not (a.option_strings and a.option_strings[0] in ("-o", "-s")) \
                else f"{a.dest}{len(kinds)}"
        inputs += [i for i in ins if i[0] not in {x[0] for x in inputs}]
        all_codes[key] = c
    codes = frozenset().union(*all_codes.values())
    if not all(0 in c for c in all_codes.values()):
        codes = codes - {0}
    if draw(st.integers(0, 5)) == 0:  # harmless: a repeated flag, --quiet
        argv = argv + draw(st.sampled_from([["--quiet"] if "quiet" in actions else [], argv[1:3] if len(argv) > 2
                                            and argv[1].startswith("--") and argv[2][:1] != "-" else []]))
    return Case(f"{command} {'+'.join(kinds)}", tuple(argv), tuple(inputs), codes)


UNKNOWN = "<unknown command>"


def quotas(n: int, commands=None) -> dict[str, int]:
    """``n`` cases shared among ``commands`` (default all, plus :data:`UNKNOWN`) by their number of flags."""
    names = list(commands or command_names()) + [UNKNOWN]
    acts = _parser_actions()
    weight = {c: 3 + (len([a for a in acts[c] if _dest_kind(a) != "text"]) if c in acts else 0) for c in names}
    total = sum(weight.values())
    out = {c: max(2, n * w // total) for c, w in weight.items()}
    out[max(out, key=out.get)] += max(0, n - sum(out.values()))
    return out


def command_cases(command: str, fx: Fixtures):
    """A strategy of :class:`Case` of one subcommand, or of unknown commands for :data:`UNKNOWN`."""
    if command != UNKNOWN:
        return case_of(command, fx)
    names = command_names()
    return st.tuples(NAME.filter(lambda s: s not in names and not s.startswith("-")), st.lists(
        st.text(max_size=8), max_size=2)).map(lambda t: Case("unknown command", (t[0], *t[1])))


def cases(fx: Fixtures, commands=None):
    """A strategy of :class:`Case` over ``commands`` (default: every subcommand of the parser) plus
    unknown commands."""
    names = list(commands or command_names())
    unknown = st.tuples(NAME.filter(lambda s: s not in names and not s.startswith("-")), st.lists(
        st.text(max_size=8), max_size=2)).map(lambda t: Case("unknown command", (t[0], *t[1])))
    # each command as likely as an unknown one (a plain one_of would favour its first branch early on)
    return st.integers(0, len(names)).flatmap(lambda i: case_of(names[i], fx) if i < len(names) else unknown)


def valid_cases() -> list[Case]:
    """Cheap valid runs that must succeed (exit 0, no traceback)."""
    out = [Case("valid", ("simulate", "--problem", "ct", "-o", "size=16", "-o", "angles=4", "--out", "o.nc"),
                codes=frozenset({0})),
           Case("valid", ("version",), codes=frozenset({0})), Case("valid", ("priors",), codes=frozenset({0})),
           Case("valid", tuple(BASES["reconstruct"]), codes=frozenset({0})),
           Case("valid", ("calibrate", "--model", "mri-t2", "--simulate", "--out", "c.nc"), codes=frozenset({0})),
           Case("valid", tuple(BASES["plot"]), BASE_INPUTS["plot"], codes=frozenset({0})),
           Case("valid", tuple(BASES["import"]), BASE_INPUTS["import"], codes=frozenset({0})),
           Case("valid", tuple(BASES["sample-prior"]), codes=frozenset({0})),
           Case("valid", tuple(BASES["demo"]), codes=frozenset({0})),
           Case("valid", tuple(BASES["train-prior"]), codes=frozenset({0}))]
    return out


def regression_cases() -> list[Case]:
    """Command lines that once ended badly (a traceback, a leftover folder, an accepted bad value,
    two lines): each must now be refused in one line with exit 2 and leave nothing."""
    tp, rb, rc = BASES["train-prior"], BASES["reconstruct-batch"], BASES["reconstruct"]
    huge = "1000000000000"
    out = [Case("regression", tuple(rc + ["--figure", "/proc/f.png"]), (), frozenset({1, 2}))]  # no o.nc left
    return out + [Case("regression", tuple(argv), tuple(inputs)) for argv, inputs in [
        (tp + ["--strategy", "bogus"], ()),
        (tp + ["--accelerator", "bogus"], ()),
        (tp + ["--data-cache", "x.st"], (("x.st", "file", Blob(b"keep")),)),
        (tp + ["--data-device", "zz0"], ()),
        (rb + ["--devices", huge], ()),
        (rb + ["--num-nodes", huge], ()),
        (rb + ["--strategy", "a\nb"], ()),
        (rb[:9] + ["", "--quiet"], ()),
        (rb + ["--sampler", "bogus"], ()),
        (rb + ["--steps", "0"], ()),
        (rc + ["--checkpoint", ""], ()),
        (rc + ["--sampler", ""], ()),
        (rc + ["--device", "meta"], ()),
        (rc + ["--num-samples", huge], ()),
        (rc + ["--seed", str(2**70)], ()),
        (rc + ["--threads", huge], ()),
        (rc + ["-s", "rho=0"], ()),
        (rc + ["--figure", "nodir/f.png"], ()),
        (rc + ["--checkpoint", "o.nc"], ()),
        (rc + ["--out", LONG + ".nc"], ()),
        (["simulate", "--problem", "ct", "-o", "size=100000", "--out", "o.nc"], ()),
        (["simulate", "--problem", "ct", "-o", "angles=100000000", "--out", "o.nc"], ()),
        (tp + ["--num-nodes", "0"], ()),
        (tp + ["--threads", "-1"], ()),
        (tp + ["--lr", "nan"], ()),
        (["calibrate", "--data", "fifo.nc", "--out", "o.nc"], (("fifo.nc", "fifo", None),)),
        (tp + ["--accelerator", "tpu"], ()),
        (rb + ["--accelerator", "tpu"], ()),
        (["reconstruct-batch", "empty.nc"] + rb[2:], (("empty.nc", "file", Blob(b"")),)),
        (_set(BASES["import"], "--angles", ["0:1e9:1e-9"]), BASE_INPUTS["import"]),
        (BASES["import"] + ["-o", "size=nan"], BASE_INPUTS["import"]),
    ]]


# ------------------------------------------------------------------ fixtures
@dataclass
class Fixtures:
    """The shared valid files (``paths``) and their bytes (``data``)."""

    root: Path
    paths: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    def snapshot(self) -> dict:
        return _snapshot(self.root)

    def __repr__(self):
        return f"Fixtures({self.root})"


def build_fixtures(root: Path) -> Fixtures:
    """Write the valid files the cases refer to under ``root``."""
    import numpy as np
    import torch

    from inverse.calibration.io import write_data
    from inverse.calibration.models import T2Relaxation
    from inverse.measurements import simulate
    from priors import EDMPrior
    from priors.loading import save_prior
    from priors.training import build_unet
    from samplers import Posterior

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name in _FIX_NAMES.values():  # a fresh set in a reused directory
        p = root / name.split("/")[0]
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
    fx = Fixtures(root)
    fx.paths["Y"] = Path(simulate("ct", options={"size": 16, "angles": 8}, seed=0).to_netcdf(root / "y.nc"))
    torch.manual_seed(0)
    prior = EDMPrior(build_unet(16, 1, widths=(8, 8)), (1, 16, 16))
    fx.paths["PRIOR"] = Path(save_prior(prior, root / "prior", {"name": "tiny-edm"}))
    post = Posterior(torch.randn(3, 1, 16, 16, dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                     {"nfe": 3}, {"seed": 0}, truth=torch.zeros(1, 16, 16, dtype=torch.float64))
    fx.paths["POST"] = Path(post.to_netcdf(root / "post.nc"))
    m = T2Relaxation()
    fx.paths["CAL"] = Path(write_data(root / "cal.nc", m, m.simulate(m.default_truth(), 0.02, seed=0), sigma=0.02,
                                      truth=m.default_truth()))
    np.save(root / "truth.npy", np.random.default_rng(0).random((16, 16)))
    fx.paths["TRUTH"] = root / "truth.npy"
    np.save(root / "sino.npy", np.random.default_rng(0).random((6, 16)))  # CT: 6 angles, 16 detector bins
    fx.paths["SINO"] = root / "sino.npy"
    ck = root / "ckpt"
    ck.mkdir(exist_ok=True)
    code, _, err, exc = _call(["reconstruct", str(fx.paths["Y"]), "--prior", str(fx.paths["PRIOR"]), "--steps", "1",
                               "--num-samples", "1", "--out", str(ck / "p.nc"), "--quiet", "--checkpoint",
                               str(ck / "c.safetensors")], timeout=120)
    if code != 0:
        raise RuntimeError(f"fixture checkpoint run failed ({code}): {err}{exc}")
    fx.paths["CKPT"] = ck / "c.safetensors"
    for k, p in fx.paths.items():
        if p.is_file():
            fx.data[k] = p.read_bytes()
    return fx


def preload() -> None:
    """Import what the commands import, so the first case is not charged for it (and loggers that
    bind ``sys.stderr`` at import bind the real one)."""
    import matplotlib

    matplotlib.use("Agg")
    import importlib

    for m in ("torch", "xarray", "h5netcdf", "h5py", "matplotlib.pyplot", "inverse.reconstruction", "inverse.figures",
              "inverse.measurements", "inverse.calibration.io", "samplers", "priors"):
        with contextlib.suppress(Exception):
            importlib.import_module(m)
    for m in ("lightning", "pytorch_lightning", "lightning.pytorch"):
        with contextlib.suppress(Exception):
            importlib.import_module(m)


# ------------------------------------------------------------------ running
@dataclass
class Outcome:
    """What one run did."""

    code: object
    stdout: str
    stderr: str
    exception: str  # the traceback of an exception that escaped main, else ""
    seconds: float
    created: list
    changed: list
    modes: dict  # new regular file -> permission bits (successful runs)
    fixture_changed: list
    timed_out: bool = False


class _Timeout(BaseException):
    """Raised by the alarm: not an ``Exception``, so no ``except Exception`` swallows it."""


def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            with contextlib.suppress(OSError):
                s = p.lstat()
                out[str(p.relative_to(root))] = (s.st_mode, s.st_size, s.st_mtime_ns)
    return out


class _Buffer(io.StringIO):
    """A text buffer that survives ``close()`` (the command closes stderr on a broken pipe)."""

    def close(self):
        pass


@contextlib.contextmanager
def _captured():
    """Capture fds 1 and 2 (C libraries, subprocesses) and ``sys.stdout``/``sys.stderr`` (Python, warnings,
    loggers bound to the old streams) together; yields a function returning ``(stdout, stderr)``."""
    files = [tempfile.TemporaryFile(mode="w+b") for _ in range(2)]
    saved_fds = [os.dup(1), os.dup(2)]
    old = sys.stdout, sys.stderr
    for f in old:
        with contextlib.suppress(Exception):
            f.flush()
    bufs = [_Buffer(), _Buffer()]
    handlers = []
    for lg in [logging.getLogger()] + [v for v in logging.Logger.manager.loggerDict.values()
                                       if isinstance(v, logging.Logger)]:
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (
                    old[0], old[1], sys.__stdout__, sys.__stderr__):
                handlers.append((h, h.stream))
                h.stream = bufs[1] if h.stream in (old[1], sys.__stderr__) else bufs[0]
    result = {}
    try:
        os.dup2(files[0].fileno(), 1)
        os.dup2(files[1].fileno(), 2)
        sys.stdout, sys.stderr = bufs
        yield result
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout, sys.stderr = old
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        for h, s in handlers:
            h.stream = s
        texts = []
        for f in files:
            f.seek(0)
            texts.append(f.read().decode("utf-8", "replace"))
            f.close()
        result["stdout"] = bufs[0].getvalue() + texts[0]
        result["stderr"] = bufs[1].getvalue() + texts[1]


def _call(argv, timeout: float, memory_gb: float = 4.0):
    """Run ``inverse.cli.main(argv)``: ``(code, stdout, stderr, traceback text)``."""
    from inverse.cli import main

    def alarm(signum, frame):
        raise _Timeout(f"no answer within {timeout:g} s")

    old_handler = signal.signal(signal.SIGALRM, alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    code, exc = None, ""
    with _captured() as cap:
        try:
            with contextlib.suppress(ValueError, OSError):
                vm = _vm_bytes()
                if vm:
                    limit = int(vm + memory_gb * 2**30)
                    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else
                                                            min(limit, hard), hard))
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                code = main(list(argv))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        except SystemExit as e:
            code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
        except _Timeout as e:
            code, exc = "timeout", str(e)
        except BaseException:  # noqa: B036 - everything that escapes main is a finding
            code, exc = "exception", traceback.format_exc()
        finally:
            signal.signal(signal.SIGALRM, old_handler)
    return code, cap["stdout"], cap["stderr"], exc


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _materialize(case: Case, fx: Fixtures, work: Path) -> None:
    for rel, kind, data in case.inputs:
        p = work / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            p.write_bytes(data)
        elif kind == "copy":
            src = fx.paths[data]
            shutil.copytree(src, p) if src.is_dir() else shutil.copyfile(src, p)
        elif kind == "dir":
            p.mkdir(exist_ok=True)
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "symlink":
            p.symlink_to(data)


def _resolve(argv, fx: Fixtures) -> list[str]:
    out = []
    for a in argv:
        for k, p in fx.paths.items():
            a = a.replace("{" + k + "}", str(p))
        out.append(a)
    return out


def run_case(case: Case, fx: Fixtures, work: Path, timeout: float = 20.0) -> Outcome:
    """Run ``case`` in the empty directory ``work`` (created; left for the caller to remove)."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=False)
    _materialize(case, fx, work)
    before, fx_before = _snapshot(work), fx.snapshot()
    cwd, old_umask = os.getcwd(), os.umask(0o022)
    threads = _torch_threads()
    os.chdir(work)
    t0 = time.perf_counter()
    try:
        code, out, err, exc = _call(_resolve(case.argv, fx), timeout)
    finally:
        seconds = time.perf_counter() - t0
        os.chdir(cwd)
        os.umask(old_umask)
        _torch_threads(threads)  # a case's --threads must not slow the next ones
    after = _snapshot(work)
    created = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and after[k][1:] != before[k][1:]
                     and not Path(work, k).is_dir())
    modes = {k: after[k][0] & 0o777 for k in created if (work / k).is_file() and not (work / k).is_symlink()}
    fx_after = fx.snapshot()
    fx_changed = sorted(k for k in set(fx_before) | set(fx_after) if fx_before.get(k) != fx_after.get(k))
    return Outcome(code, out, err, exc, seconds, created, changed, modes, fx_changed, code == "timeout")


def _torch_threads(n: int | None = None) -> int:
    import torch

    if n is not None and n != torch.get_num_threads():
        torch.set_num_threads(n)
    return torch.get_num_threads()


def _lines(text: str) -> list[str]:
    return [ln for ln in text.replace("\r", "\n").split("\n") if ln.strip()]


def failures(case: Case, o: Outcome) -> dict[str, str]:
    """``{failure class: detail}`` of one run; empty when it behaved."""
    bad = {}
    if o.code == "exception" or "Traceback (most recent call last)" in o.stderr + o.stdout:
        last = (o.exception or o.stderr).strip().splitlines()
        bad["traceback"] = last[-1] if last else "?"
    if o.timed_out:
        bad["hang"] = o.exception
    elif o.code not in case.codes and o.code != "exception":
        bad["wrong_exit_code"] = f"exit {o.code}, expected {sorted(case.codes)}: {' | '.join(_lines(o.stderr))[:300]}"
    refused = o.code not in (0, "exception", "timeout")
    if refused and len(_lines(o.stderr)) != 1:
        bad["stderr_not_one_line"] = f"{len(_lines(o.stderr))} lines: " + " | ".join(_lines(o.stderr))[:400]
    if o.code != 0 and (o.created or o.changed):
        bad["leftover_files"] = ", ".join((o.created + [f"changed {c}" for c in o.changed])[:6])[:300]
    if any(Path(c).name == MARKER for c in o.created):
        bad["code_ran"] = "a pickle payload in a prior folder was unpickled"
    if o.fixture_changed:
        bad["fixture_changed"] = ", ".join(o.fixture_changed[:6])
    if refused and o.seconds > SLOW_S:
        bad["slow"] = f"refused after {o.seconds:.1f} s (validation after work?)"
    if o.code == 0:
        loose = {k: oct(m) for k, m in o.modes.items() if m != 0o644 and m != 0o755}
        if loose:
            bad["mode"] = f"under umask 022: {loose}"[:300]
    return bad


def reproducer(case: Case, fx_root: str = "$FIX") -> str:
    """A shell line that replays ``case`` (``$FIX``: a directory written by ``scripts/fuzz.py --fixtures``)."""
    setup = []
    for rel, kind, data in case.inputs:
        q = _shell(rel)
        if kind == "file":
            setup.append(f"printf '%s' ... > {q}  # {len(data)} bytes" if data else f": > {q}")
        elif kind == "copy":
            setup.append(f"cp -r {fx_root}/{_FIX_NAMES[data]} {q}")
        elif kind == "dir":
            setup.append(f"mkdir -p {q}")
        elif kind == "fifo":
            setup.append(f"mkfifo {q}")
        elif kind == "symlink":
            setup.append(f"ln -s {data} {q}")
    argv = [a for a in case.argv]
    for k, n in _FIX_NAMES.items():
        argv = [a.replace("{" + k + "}", f"{fx_root}/{n}") for a in argv]
    cmd = "inverse " + " ".join(_shell(a) for a in argv)
    return " && ".join(["cd $(mktemp -d)"] + setup + [cmd])


_FIX_NAMES = {"Y": "y.nc", "PRIOR": "prior", "POST": "post.nc", "CAL": "cal.nc", "TRUTH": "truth.npy",
              "CKPT": "ckpt/c.safetensors", "SINO": "sino.npy"}


def _shell(a: str) -> str:
    import shlex

    if len(a) >= 100 and len(set(a)) == 1:
        return f"$(printf '{a[0]}%.0s' $(seq {len(a)}))"
    if len(a) > 100 and a.startswith(LONG):
        return f"$(printf 'n%.0s' $(seq 300)){shlex.quote(a[300:])}"
    return shlex.quote(a) if "$FIX" not in a else '"' + a + '"'
