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
    (["demo", "--toy", "--steps", "0"], "num_steps must be at least 1"),
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
