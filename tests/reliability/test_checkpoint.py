"""Sampler checkpoints: interrupted runs resume bit for bit (API and command line, SIGINT and SIGKILL)."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from forward_models import InverseProblem, MatrixOperator
from inverse import open_posterior
from inverse.cli import main
from inverse.problems import gmm_case
from samplers import SAMPLERS, get_sampler, run
from samplers.base import Sampler, State
from samplers.checkpoint import CheckpointError

ROOT = Path(__file__).resolve().parents[2]

#: small settings of every registered sampler on the mixture case
SETTINGS = {"dps": {"num_steps": 12, "zeta": 0.3}, "mcg": {"num_steps": 12}, "enkg": {"num_steps": 12},
            "eki": {"num_iterations": 4, "prior_steps": 6}, "tds": {"num_steps": 12},
            "mcgdiff": {"num_steps": 12}, "afes": {"num_steps": 12},
            "pcn": {"num_steps": 12, "warmup": 4, "ode_steps": 4},
            "da": {"num_steps": 12, "warmup": 4, "ode_steps": 4, "subchain_length": 2},
            "mlda": {"num_steps": 12, "warmup": 4, "ode_steps": 4, "subchain_length": 2},
            "exact-gaussian": {"num_steps": 12, "tol": 1e-300},
            "daps": {"num_steps": 12}, "pnp-dm": {"num_steps": 12, "prior_steps": 4, "init_steps": 8},
            "diffpir": {"num_steps": 12}, "ddrm": {"num_steps": 12}}

#: samplers that need a Gaussian prior: run on the linear-Gaussian case of the sampler contract
NEEDS_GAUSSIAN = {"exact-gaussian"}

#: samplers that need ``forward_model.coarse()``: run on the mixture case with a coarse level added
NEEDS_COARSE = {"da", "mlda"}


class _WithCoarse(MatrixOperator):
    """The mixture case's matrix with a biased coarse level, ``0.9 A``, as many times as asked."""

    def coarse(self):
        return _WithCoarse(0.9 * self.A)


def problem_for(name):
    if name in NEEDS_GAUSSIAN:
        from tests.conftest import linear_problem

        return linear_problem()
    case = gmm_case(4, 2, seed=0)
    if name in NEEDS_COARSE:
        problem = InverseProblem(_WithCoarse(case.problem.forward_model.A), case.problem.y, case.problem.noise)
        return problem, case.prior
    return case.problem, case.prior


class _Killed(Exception):
    """Stands for SIGKILL: nothing is saved on the way out."""


def _stop_at(step, exc):
    def callback(state):
        if state.step == step:
            raise exc
    return callback


def _same(a, b):
    assert torch.equal(a.samples, b.samples)
    assert (a.log_weights is None and b.log_weights is None) or torch.equal(a.log_weights, b.log_weights)
    # timings and cache use describe the run, not its result (basis_*: the operator decomposition's seconds,
    # and whether it came from the per-process cache)
    skip = {"wall_time_s", "resumed_from_step", "basis_s", "basis_reused"}
    assert {k: v for k, v in a.diagnostics.items() if k not in skip} == \
        {k: v for k, v in b.diagnostics.items() if k not in skip}
    assert a.config == b.config


def test_every_sampler_has_settings():
    """A newly registered sampler joins the resume and reproducibility tests by one line in SETTINGS."""
    missing = set(SAMPLERS) - set(SETTINGS)
    assert not missing, f"add small settings for {sorted(missing)} to SETTINGS in {__file__}"


@pytest.mark.filterwarnings("ignore::samplers.smc.WeightCollapseWarning")
@pytest.mark.parametrize("name", sorted(SETTINGS))
@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_resumed_run_is_bit_identical(tmp_path, name, how):
    """Interrupted at step 7 (Ctrl-C saves the state; a kill leaves the step-6 checkpoint), then resumed."""
    problem, prior = problem_for(name)
    sampler = get_sampler(name, **SETTINGS[name])
    full = run(sampler, problem, prior, 32, seed=3)
    ck = tmp_path / "run.ckpt"
    exc = KeyboardInterrupt() if how == "sigint" else _Killed()
    with pytest.raises(type(exc)):
        run(sampler, problem, prior, 32, seed=3, checkpoint=ck, checkpoint_every=3, callback=_stop_at(7, exc))
    resumed = run(sampler, problem, prior, 32, seed=3, checkpoint=ck, checkpoint_every=3, resume=True)
    assert resumed.diagnostics["resumed_from_step"] == (7 if how == "sigint" else 6)
    _same(full, resumed)


def test_resume_of_a_finished_run_gives_its_posterior(tmp_path):
    case = gmm_case(4, 2, seed=0)
    s = get_sampler("tds", num_steps=6)
    ck = tmp_path / "run.ckpt"
    first = run(s, case.problem, case.prior, 16, seed=1, checkpoint=ck, checkpoint_every=100)
    again = run(s, case.problem, case.prior, 16, seed=1, checkpoint=ck, resume=True)
    assert again.diagnostics["resumed_from_step"] == 6 and again.diagnostics["nfe"] == first.diagnostics["nfe"]
    _same(first, again)


def test_checkpoint_of_another_run_is_refused(tmp_path):
    case = gmm_case(4, 2, seed=0)
    ck = tmp_path / "run.ckpt"
    run(get_sampler("dps", num_steps=4), case.problem, case.prior, 8, seed=0, checkpoint=ck, checkpoint_every=2)
    for sampler, n, seed, what in [(get_sampler("dps", num_steps=4), 8, 1, "seed"),
                                   (get_sampler("dps", num_steps=4), 9, 0, "num_samples"),
                                   (get_sampler("dps", num_steps=5), 8, 0, "sampler"),
                                   (get_sampler("mcg", num_steps=4), 8, 0, "sampler")]:
        with pytest.raises(CheckpointError, match=f"different run .*{what}"):
            run(sampler, case.problem, case.prior, n, seed=seed, checkpoint=ck, resume=True)
    other = gmm_case(4, 2, seed=1)
    with pytest.raises(CheckpointError, match="different run"):
        run(get_sampler("dps", num_steps=4), other.problem, other.prior, 8, seed=0, checkpoint=ck, resume=True)


def test_bad_checkpoint_arguments_and_files(tmp_path):
    case = gmm_case(4, 2, seed=0)
    s = get_sampler("dps", num_steps=4)
    with pytest.raises(ValueError, match="needs a checkpoint"):
        run(s, case.problem, case.prior, 8, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        run(s, case.problem, case.prior, 8, checkpoint=tmp_path / "c", checkpoint_every=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run(s, case.problem, case.prior, 8, checkpoint=tmp_path / "missing", resume=True)
    for content in (b"", b"garbage", b"\xff" * 64, (10**6).to_bytes(8, "little") + b"{}"):
        (tmp_path / "bad").write_bytes(content)
        with pytest.raises(CheckpointError, match="not a readable sampler checkpoint|not a sampler checkpoint"):
            run(s, case.problem, case.prior, 8, checkpoint=tmp_path / "bad", resume=True)
    # a safetensors file that is not ours
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a sampler checkpoint"):
        run(s, case.problem, case.prior, 8, checkpoint=tmp_path / "other.safetensors", resume=True)


def test_checkpoint_is_safetensors_and_atomic(tmp_path):
    from safetensors.torch import load_file

    case = gmm_case(4, 2, seed=0)
    ck = tmp_path / "run.ckpt"
    run(get_sampler("tds", num_steps=5), case.problem, case.prior, 8, seed=0, checkpoint=ck, checkpoint_every=2)
    tensors = load_file(str(ck))  # plain safetensors: no pickle anywhere
    assert {"x", "log_weights", "generator_state"} <= set(tensors)
    assert tensors["generator_state"].dtype == torch.uint8
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]  # no temporary files left behind


def test_sampler_with_unsupported_state_is_refused(tmp_path):
    @dataclasses.dataclass(kw_only=True)
    class OpaqueState(State):
        thing: object

    class Opaque(Sampler):
        def num_steps(self):
            return 2

        def init(self, problem, prior, n, generator):
            x = torch.zeros(n, *prior.shape, dtype=prior.dtype)
            return OpaqueState(x, 0, problem, prior, generator, thing=object())

        def step(self, state):
            return self.advance(state, x=state.x)

    case = gmm_case(4, 2, seed=0)
    with pytest.raises(CheckpointError, match=r"state\.thing is a object"):
        run(Opaque(), case.problem, case.prior, 4, checkpoint=tmp_path / "c", checkpoint_every=1)
    assert not (tmp_path / "c").exists()


@dataclasses.dataclass(frozen=True)
class _Tally:
    accepts: tuple = (0, 0)
    last: torch.Tensor | None = None


@dataclasses.dataclass(kw_only=True)
class _ChainLikeState(State):
    beta: float
    tally: _Tally
    phi: dict
    history: list


class _ChainLike(Sampler):
    """A toy kernel whose state holds what an MCMC chain carries: floats, tuples of ints, nested tensors."""

    def num_steps(self):
        return 9

    def init(self, problem, prior, n, generator):
        x = torch.randn(n, *prior.shape, generator=generator, dtype=prior.dtype)
        return _ChainLikeState(x, 0, problem, prior, generator, beta=0.5, tally=_Tally(),
                               phi={"fine": torch.zeros(n, dtype=torch.float64)}, history=[])

    def step(self, state):
        z = torch.randn(state.x.shape, generator=state.generator, dtype=state.x.dtype)
        acc = (state.tally.accepts[0] + 1, state.tally.accepts[1] + int(z.sum() > 0))
        return self.advance(state, x=state.x + state.beta * z, beta=state.beta * 0.9,
                            tally=_Tally(acc, z[:, 0].clone()), phi={"fine": state.phi["fine"] + z.sum()},
                            history=state.history + [(state.step, float(z.mean()))])

    def finalize(self, state):
        post = super().finalize(state)
        post.diagnostics = {"beta": state.beta, "accepts": list(state.tally.accepts),
                            "history": [list(h) for h in state.history], "phi": state.phi["fine"].tolist(),
                            "last": state.tally.last.tolist()}
        return post


def test_generic_state_fields_resume_bit_identically(tmp_path):
    """Floats, tuples of ints, nested dataclasses and dicts of tensors in a State subclass survive a resume."""
    case = gmm_case(4, 2, seed=0)
    full = run(_ChainLike(), case.problem, case.prior, 6, seed=2)
    ck = tmp_path / "run.ckpt"
    with pytest.raises(_Killed):
        run(_ChainLike(), case.problem, case.prior, 6, seed=2, checkpoint=ck, checkpoint_every=2,
            callback=_stop_at(5, _Killed()))
    resumed = run(_ChainLike(), case.problem, case.prior, 6, seed=2, checkpoint=ck, resume=True)
    assert resumed.diagnostics["resumed_from_step"] == 4
    assert torch.equal(full.samples, resumed.samples)
    skip = {"wall_time_s", "resumed_from_step"}
    assert {k: v for k, v in full.diagnostics.items() if k not in skip} == \
        {k: v for k, v in resumed.diagnostics.items() if k not in skip}


# ------------------------------------------------------------------ the command line, in subprocesses
def _restore_sigint():
    # a test run started in the background (nohup ... &) inherits SIGINT = ignored, and Python then
    # installs no KeyboardInterrupt handler in the child: give the child the default disposition
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(argv, cwd):
    return subprocess.Popen([sys.executable, "-m", "inverse.cli", *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=_restore_sigint)


def _wait_for_step(path, at_least, proc, timeout=120.0):
    """Wait until the checkpoint at ``path`` holds a step >= ``at_least``; its step."""
    from samplers.checkpoint import read_checkpoint_info

    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        if path.is_file():
            try:
                step = read_checkpoint_info(path)[0]["step"]
            except (CheckpointError, OSError):  # pragma: no cover - a rename in progress
                step = -1
            if step >= at_least:
                return step
        time.sleep(0.005)
    raise AssertionError("no checkpoint appeared")  # pragma: no cover


def test_command_line_resumes_after_sigint_and_sigkill(tmp_path, ct_files):
    """``inverse reconstruct --checkpoint``: Ctrl-C, then kill -9, then --resume; the posterior equals
    an uninterrupted run's bit for bit."""
    y, prior = ct_files
    # 300 steps (~7 s): long enough that the signals arrive mid-run even on a fast or loaded machine
    base = ["reconstruct", str(y), "--prior", str(prior), "--sampler", "dps", "--steps", "300",
            "--num-samples", "2", "--seed", "4", "--threads", "1", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "full.nc")]) == 0
    ck, out = tmp_path / "run.ckpt", tmp_path / "p.nc"
    args = base + ["--out", str(out), "--checkpoint", str(ck), "--checkpoint-every", "4"]
    proc = _start(args, tmp_path)
    _wait_for_step(ck, 4, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "--resume" in err
    step_int = open_ck_step(ck)
    proc = _start(args + ["--resume"], tmp_path)
    step = _wait_for_step(ck, step_int + 4, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    assert step_int < step < 300
    assert main(args + ["--resume"]) == 0
    full, resumed = open_posterior(tmp_path / "full.nc"), open_posterior(out)
    assert torch.equal(full.samples, resumed.samples)
    assert resumed.diagnostics["resumed_from_step"] >= step and resumed.diagnostics["nfe"] == full.diagnostics["nfe"]


def open_ck_step(path) -> int:
    """The step stored in a sampler checkpoint."""
    from samplers.checkpoint import read_checkpoint_info

    return read_checkpoint_info(path)[0]["step"]


@pytest.mark.parametrize("extra, message", [
    (["--resume"], "--resume needs --checkpoint"),
    (["--checkpoint", "{ck}", "--resume"], "does not exist"),
    (["--checkpoint", "{ck}", "--checkpoint-every", "0"], "at least 1"),
    (["--checkpoint", "{existing}"], "pass --resume"),
    (["--checkpoint", "{other}", "--resume"], "different run"),
])
def test_command_line_checkpoint_errors(tmp_path, ct_files, capsys, extra, message):
    y, prior = ct_files
    base = ["reconstruct", str(y), "--prior", str(prior), "--steps", "3", "--num-samples", "2", "--quiet"]
    existing = tmp_path / "existing.ckpt"
    existing.write_bytes(b"x")
    other = tmp_path / "other.ckpt"
    assert main(base + ["--seed", "1", "--out", str(tmp_path / "o1.nc"), "--checkpoint", str(other)]) == 0
    capsys.readouterr()
    extra = [e.format(ck=tmp_path / "c.ckpt", existing=existing, other=other) for e in extra]
    assert main(base + ["--out", str(tmp_path / "o.nc")] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
    assert not (tmp_path / "o.nc").exists()
