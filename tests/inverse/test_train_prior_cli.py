"""``inverse train-prior --data`` on the user's files, ``--init`` fine-tuning, and the checks that refuse bad
arguments in one line (exit 2) before anything is written; ``train-surrogate --out EXISTING`` likewise."""

import json
import os

import numpy as np
import pytest
from safetensors.torch import load_file

from inverse.cli import main

TINY = ["--size", "16", "--widths", "8", "16", "--batch-size", "4", "--threads", "1", "--quiet",
        "--checkpoint-every", "1000"]


def _pngs(folder, n=12):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (20, 24), dtype=np.uint8)).save(folder / f"im{i:02d}.png")
    return folder


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_folder_trains_with_card_normalisation_split_and_quality(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _pngs(tmp_path / "imgs")
    code, out, _ = _run(["train-prior", "--data", "imgs", "--steps", 2, "--val-fraction", 0.34,
                         "--quality-samples", 2, "--units", "grey", "--out", "p", *TINY], capsys)
    assert code == 0 and out.count("prior written to p") == 1 and "held-out examples" in out
    card = json.loads((tmp_path / "p" / "prior.json").read_text())
    d = card["data"]
    assert d["num_items"] == 12 and d["num_val_items"] == 4 and d["num_train_items"] == 8
    stats = d["statistics"]
    assert card["normalisation"] == {"scale": (stats["max"] - stats["min"]) / 2,
                                     "offset": (stats["max"] + stats["min"]) / 2, "units": "grey"}
    assert card["units"] == "grey" and card["training"]["num_train_examples"] == 8
    q = card["quality"]
    assert q["num_samples"] == 2 and q["num_val_examples"] == 4 and isinstance(q["failures"], list)


def test_npy_patches_and_init_fine_tunes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((6, 40, 40)).astype(np.float32))
    args = ["train-prior", "--data", "x.npy", "--patches", 2, "--quality-samples", 0, "--val-fraction", 0, *TINY]
    assert _run([*args, "--steps", 1, "--seed", 1, "--out", "base"], capsys)[0] == 0
    assert json.loads((tmp_path / "base" / "prior.json").read_text())["training"]["num_train_examples"] == 12
    base = load_file(tmp_path / "base" / "diffusion_pytorch_model.safetensors")
    # the fine-tuned run (seed 0: its own initial weights would differ) starts from base's weights (lr tiny: one
    # step stays next to them) with base's widths
    code, _, _ = _run([*args[:-len(TINY)], "--size", 16, "--widths", 4, "--batch-size", 4, "--threads", 1, "--quiet",
                       "--steps", 1, "--lr", 1e-12, "--init", "base", "--out", "tuned"], capsys)
    assert code == 0
    tuned = load_file(tmp_path / "tuned" / "diffusion_pytorch_model.safetensors")
    assert tuned.keys() == base.keys()
    assert max(float((tuned[k] - base[k]).abs().max()) for k in base) < 1e-6
    card = json.loads((tmp_path / "tuned" / "prior.json").read_text())
    assert card["training"]["widths"] == [8, 16] and card["data"]["init"] == "base"


@pytest.mark.parametrize("extra, message", [
    (["--num-nodes", "0"], "--num-nodes"),
    (["--threads", "-1"], "--threads"),
    (["--threads", str(10**12)], "--threads"),
    (["--widths", "0"], "--widths"),
    (["--devices", "0"], "--devices"),
    (["--lr", "nan"], "--lr"),
    (["--seed", str(2**70)], "--seed"),
    (["--steps", "0"], "--steps"),
    (["--val-fraction", "1"], "--val-fraction"),
    (["--patches", "-1"], "--patches"),
    (["--init", "no-such-prior"], "unknown prior"),
    (["--out", "x" * 300], "too long"),
    (["--accelerator", "zz0"], "--accelerator"),
    (["--accelerator", "tpu"], "not available on this machine"),  # Lightning's name, backend not installed
    (["--data-device", "zz0"], "--data-device"),
    (["--strategy", "n" * 300], "--strategy"),
])
def test_bad_arguments_refused_before_any_output(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    _pngs(tmp_path / "imgs")
    before = set(os.listdir(tmp_path))
    argv = ["train-prior", "--data", "imgs", "--out", "p", "--steps", "1", "--quiet", *extra]
    code, _, err = _run(argv, capsys)
    assert code == 2 and err.strip().count("\n") == 0 and message in err, err
    assert set(os.listdir(tmp_path)) == before  # no output, work or logs folder


def test_data_cache_refused_unless_ours_and_a_run_is_quiet_with_shared_files(tmp_path, capsys, monkeypatch):
    """A foreign --data-cache is one line before any data exist; a successful --quiet run prints nothing on
    stderr (no Lightning banner or deprecation notice) and its weights honour the umask like its other files."""
    monkeypatch.chdir(tmp_path)
    base = ["train-prior", "--dataset", "phantoms", "--size", "16", "--num-examples", "8", "--widths", "8", "8",
            "--steps", "1", "--batch-size", "4", "--quiet"]
    (tmp_path / "x.st").write_bytes(b"keep")
    code, _, err = _run([*base, "--out", "p", "--data-cache", "x.st"], capsys)
    assert code == 2 and "--data-cache" in err and err.strip().count("\n") == 0, err
    assert sorted(os.listdir(tmp_path)) == ["x.st"]
    old = os.umask(0o022)
    try:
        code, out, err = _run([*base, "--out", "p"], capsys)
    finally:
        os.umask(old)
    assert code == 0 and err == "" and "prior written to p" in out
    modes = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / "p").iterdir()}
    assert modes["diffusion_pytorch_model.safetensors"] == 0o644 and set(modes.values()) == {0o644}, modes
    code, _, err = _run([*base, "--out", "q", "--data-cache", "p/diffusion_pytorch_model.safetensors"], capsys)
    assert code == 2 and "not a data cache" in err and not (tmp_path / "q-work").exists()


def test_existing_out_refused_before_generating_data(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p").mkdir()
    code, _, err = _run(["train-prior", "--dataset", "phantoms", "--num-examples", 10**6, "--out", "p"], capsys)
    assert code == 2 and "already exists" in err and err.strip().count("\n") == 0
    assert sorted(os.listdir(tmp_path)) == ["p"]  # no p-work/ (data cache, logs)


@pytest.mark.parametrize("case", ["missing", "empty", "unreadable"])
def test_bad_data_is_one_line_naming_it(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    if case == "empty":
        (tmp_path / "imgs").mkdir()
        name = "imgs"
    elif case == "unreadable":
        _pngs(tmp_path / "imgs")
        (tmp_path / "imgs" / "zz.png").write_bytes(b"garbage")
        name = "zz.png"
    else:
        name = "imgs"
    before = set(os.listdir(tmp_path))
    code, _, err = _run(["train-prior", "--data", "imgs", "--out", "p", *TINY, "--steps", 1], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and name in err, err
    assert set(os.listdir(tmp_path)) == before


def test_train_surrogate_existing_out_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "surrogate.json").write_text("{}")
    code, _, err = _run(["train-surrogate", "--out", "s", "--num-examples", 10**7], capsys)
    assert code == 2 and "already holds a surrogate" in err and err.strip().count("\n") == 0
    assert os.listdir(tmp_path / "s") == ["surrogate.json"]
    code, _, err = _run(["train-surrogate", "--out", "t", "--threads", 10**12], capsys)
    assert code == 2 and "--threads" in err and not (tmp_path / "t").exists()


@pytest.mark.slow  # three processes: the command and its two DDP ranks
def test_ddp_prints_once_from_rank_zero(tmp_path):
    import subprocess
    import sys

    _pngs(tmp_path / "imgs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("MASTER_PORT", None)
    argv = ["train-prior", "--data", "imgs", "--out", "p", *TINY, "--steps", 2, "--devices", 2, "--strategy", "ddp",
            "--quality-samples", 1, "--val-fraction", 0.2]
    r = subprocess.run([sys.executable, "-m", "inverse.cli", *map(str, argv)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("prior written to") == 1 and r.stdout.count("held-out examples") == 1, r.stdout
    assert json.loads((tmp_path / "p" / "prior.json").read_text())["training"]["steps"] == 2
