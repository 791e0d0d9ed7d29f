"""The ``inverse`` command: help, version, demo, one-line errors with exit code 2."""

import subprocess
import sys

import pytest

from inverse import __version__, open_posterior
from inverse.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "version" in out


def test_version(capsys):
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_demo_writes_posterior_and_figure(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--toy", "--out", str(out), "--num-samples", "300", "--steps", "30", "--quiet"]) == 0
    post = open_posterior(out / "posterior.nc")
    assert post.samples.shape == (300, 2) and post.truth is not None
    assert post.diagnostics["sliced_wasserstein"] > 0
    assert (out / "posterior.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "posterior.nc" in capsys.readouterr().out
    # a second run refuses to overwrite, in one line, and leaves the files alone
    before = (out / "posterior.nc").read_bytes()
    assert main(["demo", "--toy", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err
    assert (out / "posterior.nc").read_bytes() == before


@pytest.mark.parametrize("argv, message", [
    (["demo", "--sampler", "dpss"], "did you mean 'dps'"),
    (["demo", "--num-samples", "many"], "invalid int value"),
    (["demo", "--num-samples", "1"], "at least 2"),
    (["demo", "--toy", "--num-samples", "1"], "at least 2"),
    (["demo", "--toy", "--steps", "0"], "num_steps must be a positive integer, got 0"),
    (["frobnicate"], "invalid choice"),
    (["demo", "--bogus"], "unrecognized arguments"),
])
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, argv, message):
    argv = argv + (["--out", str(tmp_path / "o")] if argv[0] == "demo" else [])
    proc = subprocess.run([sys.executable, "-m", "inverse.cli", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert not (tmp_path / "o" / "posterior.nc").exists()


def test_plot_of_a_calibration_result(tmp_path, capsys):
    data, post = tmp_path / "d.nc", tmp_path / "p.nc"
    assert main(["calibrate", "--model", "mri-t2", "--simulate", "--out", str(data), "--quiet"]) == 0
    assert main(["calibrate", "--model", "mri-t2", "--data", str(data), "--out", str(post), "--quiet",
                 "--chains", "2", "--warmup", "100", "--samples", "100"]) == 0
    assert main(["plot", str(post)]) == 0
    out = capsys.readouterr().out
    assert "T2" in out and "R-hat" in out
    for kind in ("trace", "pair"):
        assert (tmp_path / f"p-{kind}.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(tmp_path / "missing.nc")]) == 2
    assert main(["plot", str(data)]) == 2  # a data file is not a result


def test_help_does_not_import_torch():
    """`inverse --help` and argument errors answer without torch (0.2 s instead of 3-10 s)."""
    import subprocess
    import sys

    code = ("import sys, inverse, inverse.cli; p = inverse.cli.build_parser(); p.format_help(); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("error", [TypeError("an argument of the wrong type"), ValueError("a plain ValueError"),
                                   KeyError("key"), AttributeError("attribute")])
def test_a_programming_error_keeps_its_traceback(monkeypatch, error):
    """Only user errors become exit 2: anything else a command raises is a bug and propagates."""
    import inverse.commands.version

    def broken(args):
        raise error

    monkeypatch.setattr(inverse.commands.version, "run", broken)
    with pytest.raises(type(error)):
        main(["version"])


@pytest.mark.parametrize("error", ["user", "forward_model", "prior", "sampler_config", "missing_file"])
def test_a_user_error_is_one_line_and_exit_2(monkeypatch, capsys, error):
    import inverse.commands.version
    from forward_models import ForwardModelError
    from inverse.errors import USER_ERRORS, UserError
    from priors import PriorError
    from samplers.errors import SamplerConfigError

    make = {"user": UserError, "forward_model": ForwardModelError, "prior": PriorError,
            "sampler_config": SamplerConfigError, "missing_file": FileNotFoundError}[error]
    assert make is FileNotFoundError or (make in USER_ERRORS and issubclass(make, ValueError))

    def refuses(args):
        raise make("the input is wrong")

    monkeypatch.setattr(inverse.commands.version, "run", refuses)
    assert main(["version"]) == 2
    assert capsys.readouterr().err == "inverse version: error: the input is wrong\n"


def test_every_command_dispatches_to_its_module():
    from inverse.cli import build_parser
    from inverse.commands import COMMANDS

    parser = build_parser()
    names = parser._subparsers._group_actions[0].choices
    assert list(names) == ["demo", "train-prior", "simulate", "import", "reconstruct", "calibrate", "train-surrogate",
                           "reconstruct-batch", "plot", "priors", "sample-prior", "version"]
    for command, name in zip(COMMANDS, names, strict=True):
        assert names[name].get_default("func") is command.run


def test_parse_key_values():
    from inverse.cli import parse_key_values
    from inverse.errors import UserError

    assert parse_key_values(["angles=20", "kind=gaussian", "noise-level=0.1", " a = [1, 2]"], "-o") == {
        "angles": 20, "kind": "gaussian", "noise_level": 0.1, "a": [1, 2]}
    with pytest.raises(UserError, match="-o 'angles' must look like KEY=VALUE"):
        parse_key_values(["angles"], "-o")


def test_inverse_reconstruct_stays_the_function():
    """``inverse.reconstruct`` is the function on every call, also once its module has been imported."""
    import inverse
    import inverse.commands.reconstruct  # noqa: F401 - the command module of the same name
    import inverse.reconstruction  # noqa: F401
    from inverse.measurements import simulate

    m = simulate("ct", options={"size": 16, "angles": 4}, seed=0)
    first = inverse.reconstruct(m, "gaussian", "dps", num_samples=1, steps=1)
    second = inverse.reconstruct(m, "gaussian", "dps", num_samples=1, steps=1)
    assert callable(inverse.reconstruct) and first.samples.shape == second.samples.shape == (1, 1, 16, 16)
