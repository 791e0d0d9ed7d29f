"""Small guarantees of the file layer: output modes follow the umask, non-regular inputs are refused before
opening, temporary files of killed writes are cleaned up, and a handful of messages say what is wrong."""

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch

from inverse.cli import main
from samplers import Posterior
from samplers.atomic import atomic_output, remove_stale_temporaries
from samplers.netcdf import write_netcdf


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def deadline(seconds=20):
    """Fail instead of blocking forever (a FIFO opened for reading waits for a writer)."""
    def fail(*_):
        raise AssertionError(f"blocked for {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def _post():
    return Posterior(torch.zeros(2, 1, 4, 4, dtype=torch.float64), None, {"nfe": 2}, {"seed": 0})


# ------------------------------------------------------------------ modes
def test_outputs_honour_the_umask_and_a_replaced_file_keeps_its_mode(tmp_path):
    with umask(0o022):
        with atomic_output(tmp_path / "a.txt") as tmp:
            tmp.write_text("a")
        _post().to_netcdf(tmp_path / "p.nc")
    with umask(0o077):
        with atomic_output(tmp_path / "b.txt") as tmp:
            tmp.write_text("b")
    assert (_mode(tmp_path / "a.txt"), _mode(tmp_path / "p.nc"), _mode(tmp_path / "b.txt")) == (0o644, 0o644, 0o600)
    os.chmod(tmp_path / "p.nc", 0o640)
    with umask(0o022):
        _post().to_netcdf(tmp_path / "p.nc", overwrite=True)
    assert _mode(tmp_path / "p.nc") == 0o640


# ------------------------------------------------------------------ non-regular inputs
@pytest.fixture
def specials(tmp_path):
    """``{kind: path}``: a FIFO, a symbolic link to /dev/zero, a directory."""
    os.mkfifo(tmp_path / "fifo.nc")
    (tmp_path / "zero.nc").symlink_to("/dev/zero")
    (tmp_path / "dir.nc").mkdir()
    return {"FIFO": tmp_path / "fifo.nc", "device": tmp_path / "zero.nc", "directory": tmp_path / "dir.nc"}


def _readers():
    from inverse.calibration.io import read_data
    from inverse.measurements import load_truth, open_measurements
    from samplers import open_posterior
    from samplers.checkpoint import read_checkpoint_info
    from samplers.netcdf import load_dataset

    return {"load_dataset": load_dataset, "open_measurements": open_measurements, "open_posterior": open_posterior,
            "read_data": read_data, "read_checkpoint_info": read_checkpoint_info,
            "load_truth": lambda p: load_truth(p, "ct", (1, 16, 16))}


@pytest.mark.parametrize("reader", ["load_dataset", "open_measurements", "open_posterior", "read_data",
                                    "read_checkpoint_info", "load_truth"])
def test_readers_refuse_non_regular_files_without_opening_them(specials, reader):
    read = _readers()[reader]
    with deadline():
        for kind, path in specials.items():
            expected = "is a directory" if kind == "directory" else f"is not a regular file \\(a {kind}\\)"
            with pytest.raises((ValueError, OSError), match=expected):
                read(path)


@pytest.mark.parametrize("argv, message", [
    (["simulate", "--problem", "ct", "--truth", "{FIFO}", "--out", "{out}"], "is not a regular file (a FIFO)"),
    (["simulate", "--problem", "ct", "--truth", "{device}", "--out", "{out}"], "is not a regular file (a device)"),
    (["simulate", "--problem", "ct", "--truth", ".", "--out", "{out}"], "is a directory"),
    (["calibrate", "--data", "{FIFO}", "--out", "{out}"], "is not a regular file (a FIFO)"),
    (["calibrate", "--data", "{device}", "--out", "{out}"], "is not a regular file (a device)"),
    (["reconstruct", "{FIFO}", "--out", "{out}"], "is not a regular file (a FIFO)"),
    (["plot", "{device}"], "is not a regular file (a device)"),
])
def test_command_line_refuses_non_regular_inputs(specials, tmp_path, capsys, argv, message):
    argv = [a.format(out=tmp_path / "out.nc", **specials) for a in argv]
    with deadline():
        assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0 and "does not exist" not in err
    assert not (tmp_path / "out.nc").exists()


# ------------------------------------------------------------------ stale temporary files
def test_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    from samplers.atomic import STALE_AFTER_S, _host_tag

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = _host_tag()
    stale = [tmp_path / f".out.nc.{dead.pid}-{host}-0123abcd.nc.tmp",  # its process is gone
             tmp_path / ".out.nc.k3j9x0qz.nc.tmp"]  # an old tempfile-style name, over an hour old
    kept = [tmp_path / f".out.nc.{os.getpid()}-{host}-89abcdef.nc.tmp",  # a live writer's
            tmp_path / f".other.nc.{dead.pid}-{host}-0123abcd.nc.tmp",  # another target's
            tmp_path / ".out.nc.notes", tmp_path / "out.nc.bak"]  # not our pattern
    for p in stale + kept:
        p.write_bytes(b"x")
    old = time.time() - STALE_AFTER_S - 60
    os.utime(stale[1], (old, old))
    with atomic_output(tmp_path / "out.nc") as tmp:
        tmp.write_bytes(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.nc"] + [p.name for p in kept])
    assert remove_stale_temporaries(tmp_path / "out.nc") == []


def test_temporary_name_of_a_long_target_fits_the_file_system(tmp_path):
    target = tmp_path / ("n" * 250 + ".nc")
    write_netcdf(_post().to_xarray(), target)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# ------------------------------------------------------------------ messages
def test_output_path_messages(tmp_path, ct_files, capsys, monkeypatch):
    """--out "" is empty (not ". already exists"); over-long names are refused before any sampling; a write
    that fails names the target, not the temporary file."""
    import inverse.reconstruction

    def no_work(*a, **k):
        raise AssertionError("sampling started")

    monkeypatch.setattr(inverse.reconstruction, "reconstruct", no_work)
    y, prior = ct_files
    long = "a" * 300
    for argv, message in [(["simulate", "--problem", "ct", "--out", ""], "empty"),
                          (["reconstruct", str(y), "--out", ""], "empty"),
                          (["reconstruct", str(y), "--out", str(tmp_path / f"{long}.nc")], "255"),
                          (["reconstruct", str(y), "--out", str(tmp_path / "o.nc"), "--figure",
                            str(tmp_path / f"{long}.png")], "255"),
                          (["plot", str(y), "--out", ""], "empty")]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0 and "already exists" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_measurement_file_without_problem_attribute(tmp_path, ct_files):
    import xarray as xr

    from inverse.measurements import open_measurements

    y, _ = ct_files
    with xr.open_dataset(y, engine="h5netcdf") as ds:
        ds = ds.load()
    del ds.attrs["problem"]
    write_netcdf(ds, tmp_path / "y.nc")
    with pytest.raises(ValueError, match="has no 'problem' attribute"):
        open_measurements(tmp_path / "y.nc")


def test_plain_hdf5_gives_one_line_and_no_warnings(tmp_path, capsys):
    import h5py

    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.zeros((3, 4))
        f["g/b"] = np.ones(2)
    from samplers.netcdf import load_dataset

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset(path)
        assert main(["reconstruct", str(path), "--out", str(tmp_path / "o.nc")]) == 2
        assert main(["plot", str(path)]) == 2
    assert [str(w.message) for w in caught] == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("inverse ") for line in err)


@pytest.mark.parametrize("with_checkpoint", [True, False])
def test_ctrl_c_prints_one_line(tmp_path, ct_files, capsys, monkeypatch, with_checkpoint):
    import inverse.reconstruction

    ck = tmp_path / "run.ckpt"

    def interrupted(*a, **k):
        if with_checkpoint:
            ck.write_bytes(b"state")  # what the sampler saves on Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(inverse.reconstruction, "reconstruct", interrupted)
    y, prior = ct_files
    argv = ["reconstruct", str(y), "--out", str(tmp_path / "o.nc")] + (["--checkpoint", str(ck)] if with_checkpoint
                                                                       else [])
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "interrupted" in err
    assert ("--resume" in err) == with_checkpoint


def test_plot_caps_a_huge_units_attribute(tmp_path):
    """A posterior whose ``units`` attribute is 100,000 characters plots with a short label (no memory blow-up)."""
    import torch

    from inverse.figures import MAX_LABEL, plot_image_posterior
    from samplers.posterior import Posterior

    post = Posterior(torch.rand(3, 1, 8, 8), units="m" * 100_000)
    fig = plot_image_posterior(post)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels and max(len(s) for s in labels) <= MAX_LABEL
    import matplotlib.pyplot as plt

    plt.close(fig)
