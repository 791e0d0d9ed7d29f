"""Arguments refused before any work: one line on stderr, exit code 2, no traceback, no file created.

Every command is called in-process (:func:`inverse.cli.main`) from an empty working directory, which
must stay empty: a refusal leaves no output, no temporary file and no folder behind.
"""

import inspect
import shutil
import subprocess
import sys

import h5py
import pytest

from inverse.cli import main
from inverse.measurements import simulate
from samplers import SAMPLERS, get_sampler

LONG = "a" * 300


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A small CT measurement file, a copy whose options ask for 10^9 angles, and a calibration data file."""
    d = tmp_path_factory.mktemp("inputs")
    simulate("ct", options={"size": 16, "angles": 8}, seed=0).to_netcdf(d / "y.nc")
    shutil.copy(d / "y.nc", d / "huge.nc")
    with h5py.File(d / "huge.nc", "r+") as f:
        f.attrs["options"] = '{"size": 16, "angles": 1e9}'
    (d / "ys").mkdir()
    shutil.copy(d / "y.nc", d / "ys" / "y0.nc")
    assert main(["calibrate", "--model", "mri-t2", "--simulate", "--out", str(d / "t2.nc")]) == 0
    return d


@pytest.fixture()
def refuse(tmp_path, monkeypatch, capsys):
    """``refuse(argv, *fragments)``: the command exits 2 with one stderr line holding every fragment, no
    traceback, and the (empty) working directory stays empty."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    capsys.readouterr()

    def check(argv, *fragments):
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert code == 2, (argv, code, err)
        assert err.strip().count("\n") == 0 and "Traceback" not in err, (argv, err)
        for fragment in fragments:
            assert fragment in err, (argv, fragment, err)
        assert sorted(p.name for p in work.iterdir()) == [], (argv, list(work.iterdir()))
        return err

    return check


def _rec(inputs, *extra):
    return ["reconstruct", inputs / "y.nc", "--prior", "gaussian", "--num-samples", 2, "--steps", 2, "--quiet",
            "--out", "o.nc", *extra]


# ------------------------------------------------------------------ reconstruct
@pytest.mark.parametrize(("extra", "fragments"), [
    (["-s", "rho=0"], ["rho", "got 0"]),
    (["-s", "rho=0.1"], ["rho must lie in"]),
    (["-s", "rho=1e300"], ["rho must lie in"]),
    (["--device", "meta"], ["--device 'meta'", "cpu, cuda"]),
    (["--device", "tpu"], ["--device 'tpu'"]),
    (["--device", "cuda:99"], ["--device cuda:99"]),
    (["--num-samples", 10**12], ["--num-samples", "memory"]),
    (["--seed", 2**70], ["--seed", "0..9223372036854775807"]),
    (["--seed", -1], ["--seed"]),
    (["--threads", 10**12], ["--threads", "1..4096"]),
    (["--threads", 0], ["--threads"]),
    (["--figure", "nodir/f.png"], ["nodir"]),
    (["--figure", LONG + ".png"], ["--figure", "bytes long"]),
    (["--checkpoint", LONG], ["--checkpoint", "bytes long"]),
    (["--checkpoint", "o.nc"], ["same file"]),
    (["--checkpoint", "./sub/../o.nc"], ["directory"]),
    (["--figure", "o.nc"], ["same file"]),
    (["--figure", "/proc/f.png"], ["/proc/f.png"]),
    (["--sampler", ""], ["--sampler", "empty"]),
    (["--checkpoint", ""], ["--checkpoint", "empty"]),
    (["--sampler", "eki", "-s", "num_iterations=2"], ["--steps", "num_iterations"]),
])
def test_reconstruct_refuses_before_work(inputs, refuse, extra, fragments):
    refuse(_rec(inputs, *extra), *fragments)


def test_reconstruct_refuses_long_out_and_output_equal_to_input(inputs, refuse):
    argv = _rec(inputs)
    argv[argv.index("--out") + 1] = LONG + ".nc"
    refuse(argv, "--out", "bytes long")
    argv[argv.index("--out") + 1] = inputs / "y.nc"
    refuse(argv + ["--overwrite"], "same file")


def test_measurement_file_asking_for_1e9_angles_is_refused(inputs, refuse):
    argv = _rec(inputs)
    argv[1] = inputs / "huge.nc"
    refuse(argv, "'angles'", "at most 10000")


# ------------------------------------------------------------------ simulate
@pytest.mark.parametrize(("extra", "fragments"), [
    (["--problem", "ct", "-o", "size=100000"], ["'size'", "at most 4096"]),
    (["--problem", "ct", "-o", "angles=100000000"], ["'angles'", "at most 10000"]),
    (["--problem", "ct", "-o", "size=4096", "-o", "angles=10000"], ["memory"]),
    (["--problem", "navier-stokes", "-o", "dt=1e-9"], ["T / dt"]),
    (["--problem", "fwi", "-o", "nt=10000000"], ["'nt'"]),
    (["--problem", "ct", "--seed", 2**70], ["--seed"]),
    (["--problem", "ct", "--out", LONG + ".nc"], ["--out", "bytes long"]),
    (["--problem", "ct", "--out", "nodir/y.nc"], ["nodir"]),
])
def test_simulate_refuses_before_work(refuse, extra, fragments):
    argv = ["simulate", *extra]
    if "--out" not in extra:
        argv += ["--out", "y.nc"]
    refuse(argv, *fragments)


# ------------------------------------------------------------------ reconstruct-batch
@pytest.mark.parametrize(("extra", "fragments"), [
    (["--devices", 0], ["--devices"]),
    (["--devices", "abc"], ["Lightning refuses"]),
    (["--strategy", "bogus"], ["Lightning refuses", "bogus"]),
    (["--accelerator", "bogus"], ["Lightning refuses"]),
    (["--num-nodes", 0], ["--num-nodes"]),
    (["--num-nodes", 2**70], ["--num-nodes"]),
    (["--devices", 10**12], ["--devices", "1..1024"]),
    (["--strategy", "a\nb"], ["Lightning refuses"]),
    (["--sampler", ""], ["--sampler", "empty"]),
    (["--sampler", "bogus"], ["unknown sampler 'bogus'"]),
    (["--prior", "bogus"], ["unknown prior 'bogus'"]),
    (["--prior", "gaussian:-1"], ["gaussian:-1"]),
    (["-s", "bogus=1"], ["bogus"]),
    (["-s", "rho=0"], ["rho"]),
    (["--steps", 0], ["num_steps"]),
    (["--seed", 2**70], ["--seed"]),
    (["--threads", 10**12], ["--threads"]),
    (["--num-samples", 10**12], ["--num-samples", "memory"]),
])
def test_reconstruct_batch_refuses_before_work(inputs, refuse, extra, fragments):
    argv = ["reconstruct-batch", inputs / "ys", "--out-dir", "out", "--quiet", "--steps", 2, "--num-samples", 2]
    if "--prior" not in extra:
        argv += ["--prior", "gaussian"]
    refuse(argv + extra, *fragments)


def test_reconstruct_batch_refuses_several_nodes_without_a_launcher(inputs, refuse, monkeypatch):
    for v in ("MASTER_ADDR", "NODE_RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "LSB_JOBID",
              "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(v, raising=False)
    refuse(["reconstruct-batch", inputs / "ys", "--out-dir", "out", "--prior", "gaussian", "--num-nodes", 2],
           "cluster launcher")


def test_reconstruct_batch_prints_one_line_of_totals(inputs, tmp_path, capsys):
    argv = ["reconstruct-batch", str(inputs / "ys"), "--out-dir", str(tmp_path / "p"), "--prior", "gaussian",
            "--steps", "2", "--num-samples", "2", "--quiet", "--threads", "1"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == f"1 measurements: 1 done; posteriors in {tmp_path / 'p'}"
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == f"1 measurements: 1 skipped; posteriors in {tmp_path / 'p'}"


@pytest.mark.slow  # the command and two DDP ranks, each importing torch
def test_reconstruct_batch_two_processes_print_totals_once(inputs, tmp_path):
    d = tmp_path / "ys"
    d.mkdir()
    for i in range(3):
        shutil.copy(inputs / "y.nc", d / f"y{i}.nc")
    r = subprocess.run([sys.executable, "-m", "inverse.cli", "reconstruct-batch", str(d), "--out-dir",
                        str(tmp_path / "p"), "--prior", "gaussian", "--steps", "2", "--num-samples", "2", "--quiet",
                        "--threads", "1", "--devices", "2", "--strategy", "ddp"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if "measurements:" in line]
    assert lines == [f"3 measurements: 3 done by 2 processes; posteriors in {tmp_path / 'p'}"], r.stdout


# ------------------------------------------------------------------ demo, calibrate, plot
@pytest.mark.parametrize(("extra", "fragments"), [
    (["--seed", 2**70], ["--seed"]),
    (["--steps", 0], ["num_steps"]),
    (["--sampler", "bogus"], ["unknown sampler"]),
    (["--num-samples", 10**12], ["--num-samples", "memory"]),
    (["--out", LONG], ["--out", "bytes long"]),
])
def test_demo_refuses_before_work(refuse, extra, fragments):
    refuse(["demo", "--toy", "--quiet", *extra], *fragments)


def test_calibrate_refuses_before_work(inputs, refuse):
    sim = ["calibrate", "--model", "mri-t2", "--simulate"]
    refuse(sim + ["--out", "t.nc", "--seed", 2**70], "--seed")
    refuse(sim + ["--out", LONG + ".nc"], "--out", "bytes long")
    refuse(sim + ["--out", "t.nc", "--threads", 10**12], "--threads")
    cal = ["calibrate", "--data", inputs / "t2.nc"]
    refuse(cal + ["--out", "p.nc", "--threads", 10**12], "--threads", "1..4096")
    refuse(cal + ["--out", "p.nc", "--seed", 2**63 - 1], "seed + i")
    refuse(cal + ["--out", "p.nc", "--chains", 10**6], "--chains")
    refuse(cal + ["--out", inputs / "t2.nc", "--overwrite"], "same file")


def test_plot_refuses_long_out(inputs, refuse):
    refuse(["plot", inputs / "y.nc", "--out", LONG + ".png"], "--out", "bytes long")
    refuse(["plot", inputs / "y.nc", "--out", LONG + "/f.png"], "--out", "bytes long")


# ------------------------------------------------------------------ --steps for every sampler
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_steps_sets_each_samplers_natural_step_count(name):
    from inverse.reconstruction import sampler_for, steps_setting

    key = steps_setting(name)
    assert key in inspect.signature(SAMPLERS[name].__init__).parameters
    cfg = sampler_for(name, "*", 3).config()  # the setting is stored under its own name or as 'steps'
    assert cfg.get(key, cfg.get("steps")) == 3, cfg
    assert sampler_for(name, "*", 5).num_steps() - sampler_for(name, "*", 3).num_steps() == 2


def test_eki_steps_through_the_library_and_the_command(inputs, tmp_path, capsys):
    import inverse

    post = inverse.reconstruct(inputs / "y.nc", "gaussian", "eki", steps=2, num_samples=4, seed=0)
    assert post.config["sampler"]["num_iterations"] == 2
    code = main(["reconstruct", str(inputs / "y.nc"), "--prior", "gaussian", "--sampler", "eki", "--steps", "2",
                 "--num-samples", "4", "--out", str(tmp_path / "p.nc"), "--quiet"])
    assert code == 0 and (tmp_path / "p.nc").is_file(), capsys.readouterr().err


def test_schedule_refuses_bad_rho_in_one_line():
    from samplers.errors import SamplerConfigError
    from samplers.schedules import karras_sigmas

    for rho in (0, -1, 0.1, 1e300, float("nan")):
        with pytest.raises(SamplerConfigError, match="rho"):
            karras_sigmas(10, 0.002, 80.0, rho)
    with pytest.raises(SamplerConfigError, match="finite decreasing"):
        karras_sigmas(10, 1e-10, 1e10, 0.6)  # levels that cancel to 0 in float64
    s = karras_sigmas(10, 0.002, 80.0, 1000.0)
    assert bool((s[1:-1] < s[:-2]).all()) and float(s[0]) == pytest.approx(80.0, rel=1e-9)


def test_mcg_points_a_black_box_model_to_derivative_free_samplers():
    import numpy as np
    import torch

    from forward_models import Gaussian, InverseProblem
    from forward_models.adapters import BlackBoxForwardModel
    from priors import GaussianPrior
    from samplers.errors import SamplerConfigError

    op = BlackBoxForwardModel(lambda x: np.tanh(x[:3]), (4,), (3,))
    problem = InverseProblem(op, torch.zeros(3, dtype=torch.float64), Gaussian(0.1))
    prior = GaussianPrior(torch.zeros(4, dtype=torch.float64), std=1.0)
    with pytest.raises(SamplerConfigError, match="EnKG or EKI") as e:
        get_sampler("mcg", num_steps=2).check(problem, prior)
    assert "DPS" not in str(e.value)
