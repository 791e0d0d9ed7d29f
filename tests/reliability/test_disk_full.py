"""A full disk: every writer fails with one line naming the target and the errno, exit code 1, no temporary
file left, no crash; ``inverse reconstruct`` keeps the finished samples.

The disk is a real 40 KiB tmpfs filled to the last byte where ``mount`` works (root); elsewhere the one
low-level write of :func:`samplers.atomic.write_bytes_atomic` raises ``ENOSPC`` for files in that folder
(``INVERSE_TEST_NO_TMPFS=1`` forces that path).
"""

import errno
import os
import subprocess
import sys

import pytest
import torch

from inverse.cli import main
from samplers import Posterior

# a writer that leaves "Exception ignored in ..." noise behind (an h5py handle freed late) fails the test
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

FILLER = "filler"

#: run in a subprocess without a real tmpfs: the same write failure, injected before the command starts
_INJECT = """
import errno, os, samplers.atomic as a
_full, _orig = os.environ["INVERSE_TEST_FULL_DIR"], a._write_all
def _write_all(tmp, view):
    if os.path.dirname(os.path.abspath(tmp)) == _full:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _orig(tmp, view)
a._write_all = _write_all
"""


def _fill(d) -> None:
    """Write a file until the file system has no byte left."""
    with open(d / FILLER, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """``(folder, injected)``: a folder on a full file system; ``injected`` when the failure is simulated."""
    d = tmp_path / "tiny"
    d.mkdir()
    mounted = os.geteuid() == 0 and not os.environ.get("INVERSE_TEST_NO_TMPFS") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(d)], capture_output=True).returncode == 0
    if mounted:
        _fill(d)
    else:
        import samplers.atomic as atomic

        (d / FILLER).write_bytes(b"\0")
        orig = atomic._write_all

        def write_all(tmp, view):
            if os.path.dirname(os.path.abspath(tmp)) == str(d):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return orig(tmp, view)

        monkeypatch.setattr(atomic, "_write_all", write_all)
    yield d, not mounted
    if mounted:
        subprocess.run(["umount", str(d)], check=True)


def _assert_one_line_enospc(err: str, target) -> None:
    err = err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and "Exception ignored" not in err, err
    assert f"cannot write {target}: [Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}" in err, err


def test_simulate_on_a_full_disk_in_a_subprocess(full_disk, tmp_path):
    """The reported crash (two h5py tracebacks, then a segfault): now one line and exit code 1."""
    d, injected = full_disk
    code = (_INJECT if injected else "") + "import sys\nfrom inverse.cli import main\nsys.exit(main(sys.argv[1:]))"
    target = d / "y.nc"
    env = dict(os.environ, OMP_NUM_THREADS="1", INVERSE_TEST_FULL_DIR=str(d))
    proc = subprocess.run([sys.executable, "-c", code, "simulate", "--problem", "ct", "-o", "size=16", "-o",
                           "angles=8", "--out", str(target)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    _assert_one_line_enospc(proc.stderr, target)
    assert sorted(os.listdir(d)) == [FILLER]


def _writers(tmp_path):
    """Each library writer as ``name -> write(target)``."""
    from inverse.calibration.io import write_data, write_inference_data
    from inverse.calibration.models import T2Relaxation
    from inverse.figures import plot_image_posterior, save_figure
    from inverse.measurements import simulate

    post = Posterior(torch.randn(2, 1, 8, 8, dtype=torch.float64), None, {"nfe": 2}, {"seed": 0})
    m = T2Relaxation()

    def inference_data(target):
        import arviz as az
        import numpy as np

        return write_inference_data(az.from_dict(posterior={"a": np.zeros((1, 5))}), target)

    def checkpoint(target):
        from inverse.problems import gmm_case
        from samplers import get_sampler, run

        case = gmm_case(4, 2, seed=0)
        run(get_sampler("dps", num_steps=4), case.problem, case.prior, 2, seed=0, checkpoint=target,
            checkpoint_every=2)

    return {"posterior": lambda t: post.to_netcdf(t),
            "measurements": lambda t: simulate("ct", options={"size": 16, "angles": 8}, seed=0).to_netcdf(t),
            "figure": lambda t: save_figure(plot_image_posterior(post), t),
            "calibration data": lambda t: write_data(t, m, m.simulate(m.default_truth(), 0.02, seed=0)),
            "inference data": inference_data, "checkpoint": checkpoint}


WRITERS = ["posterior", "measurements", "figure", "calibration data", "inference data", "checkpoint"]


@pytest.mark.parametrize("name", WRITERS)
def test_every_writer_fails_cleanly(full_disk, tmp_path, name):
    from samplers.atomic import OutputWriteError

    d, _ = full_disk
    target = d / f"out-{name.replace(' ', '-')}.bin"
    write = _writers(tmp_path)[name]
    with pytest.raises(OutputWriteError) as info:
        write(target)
    assert info.value.errno == errno.ENOSPC
    _assert_one_line_enospc(str(info.value), target)
    assert sorted(os.listdir(d)) == [FILLER]


def test_reconstruct_keeps_the_finished_posterior(full_disk, tmp_path, ct_files, capsys, monkeypatch):
    """The final write fails: exit 1, one line naming where the samples are; that file is the posterior."""
    import tempfile

    from samplers import open_posterior

    d, _ = full_disk
    rescue = tmp_path / "rescue"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    y, prior = ct_files
    target = d / "o.nc"
    assert main(["reconstruct", str(y), "--prior", str(prior), "--steps", "2", "--num-samples", "2", "--quiet",
                 "--out", str(target)]) == 1
    err = capsys.readouterr().err
    _assert_one_line_enospc(err, target)
    saved = list(rescue.iterdir())
    assert len(saved) == 1 and f"the posterior is saved in {saved[0]}" in err
    assert open_posterior(saved[0]).samples.shape[0] == 2
    assert sorted(os.listdir(d)) == [FILLER]


def test_checkpoint_plot_and_calibrate_on_a_full_disk(full_disk, tmp_path, ct_files, capsys):
    d, _ = full_disk
    y, prior = ct_files
    runs = [(["reconstruct", str(y), "--prior", str(prior), "--steps", "4", "--num-samples", "2", "--quiet",
              "--out", str(tmp_path / "o.nc"), "--checkpoint", str(d / "c.ckpt"), "--checkpoint-every", "2"],
             d / "c.ckpt"),
            (["calibrate", "--simulate", "--model", "mri-t2", "--out", str(d / "t2.nc")], d / "t2.nc")]
    post = Posterior(torch.randn(2, 1, 8, 8, dtype=torch.float64), None, {"nfe": 2}, {"seed": 0})
    post.to_netcdf(tmp_path / "p.nc")
    runs.append((["plot", str(tmp_path / "p.nc"), "--out", str(d / "f.png")], d / "f.png"))
    for argv, target in runs:
        assert main(argv) == 1, argv
        _assert_one_line_enospc(capsys.readouterr().err, target)
    assert not (tmp_path / "o.nc").exists() and sorted(os.listdir(d)) == [FILLER]


@pytest.mark.parametrize("code", ["ENOSPC", "EDQUOT", "EROFS", "EIO"])
def test_environment_errnos_exit_1(tmp_path, capsys, monkeypatch, code):
    """A full disk, a quota, a read-only or a failing device: one line with the errno, exit code 1."""
    import samplers.atomic as atomic

    number = getattr(errno, code)

    def fail(tmp, view):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(atomic, "_write_all", fail)
    target = tmp_path / "y.nc"
    assert main(["simulate", "--problem", "ct", "-o", "size=16", "-o", "angles=8", "--out", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"inverse simulate: error: cannot write {target}: [Errno {number}] {os.strerror(number)}"
    assert list(tmp_path.iterdir()) == []


def test_read_only_directory_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """A read-only file system (EROFS): one line, exit 1, checked before the simulation."""
    import inverse.measurements

    real = os.statvfs

    class ReadOnly:
        def __init__(self, st):
            self.st = st

        def __getattr__(self, name):
            return os.ST_RDONLY | self.st.f_flag if name == "f_flag" else getattr(self.st, name)

    monkeypatch.setattr(os, "statvfs", lambda p: ReadOnly(real(p)) if os.path.abspath(p) == str(tmp_path) else real(p))
    monkeypatch.setattr(inverse.measurements, "simulate", lambda *a, **k: pytest.fail("simulated before the check"))
    target = tmp_path / "y.nc"
    assert main(["simulate", "--problem", "ct", "--out", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"inverse simulate: error: cannot write {target}: [Errno {errno.EROFS}] {os.strerror(errno.EROFS)}"
    assert list(tmp_path.iterdir()) == []
