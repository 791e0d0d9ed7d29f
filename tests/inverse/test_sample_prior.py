"""``inverse sample-prior``: unconditional prior samples as NetCDF (and a figure), run in-process via
:func:`inverse.cli.main`; every bad flag is one line, exit code 2, before any work, with nothing written."""

from __future__ import annotations

import pytest
import torch

from inverse.cli import main
from priors import EDMPrior, Normalisation, save_prior
from samplers import open_posterior
from tests.priors.test_contract import _tiny_unet


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    prior = EDMPrior(_tiny_unet(0), (1, 8, 8), normalisation=Normalisation(1000.0, 2000.0, "m/s"),
                     dims=("channel", "depth", "offset"))
    return save_prior(prior, tmp_path_factory.mktemp("p") / "tiny", {"name": "tiny", "dims": ["channel", "depth",
                                                                                                 "offset"]})


def _run(capsys, *argv):
    code = main(["sample-prior", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_gaussian_samples_round_trip_and_are_seeded(tmp_path, capsys):
    a, b, c = tmp_path / "a.nc", tmp_path / "b.nc", tmp_path / "c.nc"
    assert _run(capsys, "gaussian:2", "--num-samples", 50, "--shape", "3", "--seed", 4, "--out", a)[0] == 0
    assert _run(capsys, "gaussian:2", "--num-samples", 50, "--shape", "3", "--seed", 4, "--out", b)[0] == 0
    assert _run(capsys, "gaussian:2", "--num-samples", 50, "--shape", "3", "--seed", 5, "--out", c)[0] == 0
    pa, pb, pc = open_posterior(a), open_posterior(b), open_posterior(c)
    assert pa.samples.shape == (50, 3) and torch.equal(pa.samples, pb.samples)
    assert not torch.equal(pa.samples, pc.samples)
    assert 1.5 < float(pa.samples.std()) < 2.5
    assert pa.config["kind"] == "prior-samples" and pa.config["sampler"] == "exact" and pa.config["seed"] == 4


def test_network_prior_samples_with_card_units_dims_and_figure(tiny_dir, tmp_path, capsys):
    out, fig = tmp_path / "s.nc", tmp_path / "s.png"
    code, text, err = _run(capsys, tiny_dir, "--num-samples", 3, "--steps", 2, "--seed", 1, "--out", out,
                           "--figure", fig)
    assert code == 0, err
    assert "m/s" in text and "3 of shape (1, 8, 8)" in text
    post = open_posterior(out)
    assert post.units == "m/s" and post.dims == ("channel", "depth", "offset") and post.samples.shape == (3, 1, 8, 8)
    assert post.config["steps"] == 2 and post.config["sampler"].startswith("probability-flow")
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from priors import load_prior

    want = load_prior(tiny_dir).sample(3, steps=2, seed=1, physical=True)
    torch.testing.assert_close(post.samples, want, rtol=0, atol=1e-3)


def test_folder_without_card_warns_in_one_line_and_takes_a_data_range(tiny_dir, tmp_path, capsys):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_dir, bare)
    (bare / "prior.json").unlink()
    code, _, err = _run(capsys, bare, "--num-samples", 1, "--steps", 2, "--out", tmp_path / "a.nc")
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and "no prior.json" in lines[0], err
    code, _, err = _run(capsys, bare, "--num-samples", 1, "--steps", 2, "--data-range", "0,1", "--units", "K",
                        "--out", tmp_path / "b.nc")
    assert code == 0 and err == ""
    assert open_posterior(tmp_path / "b.nc").units == "K"


@pytest.mark.parametrize("argv, message", [
    (["--num-samples", 0], "--num-samples"),
    (["--num-samples", 10**9], "--num-samples"),
    (["--steps", 0], "--steps"),
    (["--steps", 1], "--steps"),
    (["--steps", 10**7], "--steps"),
    (["--seed", -1], "--seed"),
    (["--seed", 2**70], "--seed"),
    (["--device", "meta"], "--device"),
    (["--data-range", "1,0"], "--data-range"),
    (["--data-range", "a"], "--data-range"),
    (["--units", "u" * 300], "--units"),
    (["--figure", "{tmp}/nodir/f.png"], "does not exist"),
    (["--figure", "{tmp}/o.nc"], "same file"),
    (["--out", "{tmp}/" + "x" * 300 + ".nc"], "long"),
    (["--out", "{tmp}/missing/o.nc"], "does not exist"),
    (["--out", ""], "empty"),
])
def test_bad_flags_are_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    argv = [str(a).replace("{tmp}", str(tmp_path)) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "o.nc")]
    code, _, err = _run(capsys, "gaussian", "--shape", "2", *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, message", [
    ("no-such-prior", "unknown prior"), ("gaussian:-1", "positive"), ("gaussian:x", "number"),
])
def test_bad_names_are_one_line(tmp_path, capsys, name, message):
    code, _, err = _run(capsys, name, "--out", tmp_path / "o.nc")
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shape", ["0", "a,b", "1,2,3,4,5", "4096,4096,4096"])
def test_bad_shapes(tmp_path, capsys, shape):
    code, _, err = _run(capsys, "gaussian", "--shape", shape, "--out", tmp_path / "o.nc")
    assert code == 2 and "--shape" in err, err


def test_existing_output_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "o.nc"
    out.write_text("old")
    code, _, err = _run(capsys, "gaussian", "--shape", "2", "--out", out)
    assert code == 2 and "already exists" in err and out.read_text() == "old"
    assert _run(capsys, "gaussian", "--shape", "2", "--out", out, "--overwrite")[0] == 0
    assert open_posterior(out).samples.shape == (16, 2)


def test_too_many_samples_for_memory_is_refused(tmp_path, capsys, monkeypatch):
    import inverse.validation

    monkeypatch.setattr(inverse.validation, "memory_limit_bytes", lambda fraction=0.5: 1000)
    code, _, err = _run(capsys, "gaussian", "--shape", "2,8,8", "--num-samples", 100, "--out", tmp_path / "o.nc")
    assert code == 2 and "fewer samples" in err, err
    assert list(tmp_path.iterdir()) == []


def test_listed_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "sample-prior" in capsys.readouterr().out


def test_runaway_ode_work_is_refused(tiny_dir, tmp_path, capsys):
    code, _, err = _run(capsys, tiny_dir, "--num-samples", 100_000, "--steps", 100, "--out", tmp_path / "o.nc")
    assert code == 2 and "network evaluations" in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, message", [("gaussian:inf", "positive"), ("gaussian:nan", "positive"),
                                           ("", "empty prior name"), (" ", "empty prior name")])
def test_odd_names(tmp_path, capsys, name, message):
    import re

    code, _, err = _run(capsys, name, "--out", tmp_path / "o.nc")
    assert code == 2 and re.search(message, err) and len(err.strip().splitlines()) == 1, err


def test_a_file_or_an_empty_folder_is_not_a_prior(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    (tmp_path / "empty").mkdir()
    for name, message in ((tmp_path / "f", "is a file"), (tmp_path / "empty", "no config.json")):
        code, _, err = _run(capsys, name, "--out", tmp_path / "o.nc")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.nc").exists()


def test_reconstruct_with_a_cardless_prior_folder_warns_in_one_line(tiny_dir, tmp_path, capsys):
    """``inverse reconstruct --prior DIR`` of a folder without prior.json: the assumption is one warning line."""
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_dir, bare)
    (bare / "prior.json").unlink()
    assert main(["simulate", "--problem", "ct", "-o", "size=8", "-o", "angles=4", "--out", str(tmp_path / "y.nc")]) == 0
    capsys.readouterr()
    code = main(["reconstruct", str(tmp_path / "y.nc"), "--prior", str(bare), "--steps", "2", "--num-samples", "1",
                 "--out", str(tmp_path / "p.nc"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0
    lines = [line for line in err.splitlines() if "prior.json" in line]
    assert len(lines) == 1 and lines[0].startswith("inverse reconstruct: warning:"), err
    assert "UserWarning" not in err and "warnings.warn" not in err
