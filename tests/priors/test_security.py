"""The prior-folder security policy: weights are read from safetensors only, never unpickled.

Each attack is a folder holding a valid prior plus something that would make a loader read pickle: a
``torch.save`` file whose unpickling writes a marker file, named by a weight index (``*.index.json``) or a
configuration, or just lying in the folder under a pickle suffix; a link that leaves the folder. Every one
is refused by :func:`priors.load_prior` with one line (:class:`priors.PriorLoadError`) and the marker is
never written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from priors import EDMPrior, PriorLoadError, load_prior, save_prior
from priors.folder_check import REFUSED_SUFFIXES, check_prior_folder
from tests.priors.test_contract import _tiny_unet

INDEX = "diffusion_pytorch_model.safetensors.index.json"


class _Payload:
    """Unpickling this object opens (creates) the marker file: proof that pickle ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def prior_dir(tmp_path):
    return save_prior(EDMPrior(_tiny_unet(0), (1, 8, 8)), tmp_path / "prior", {"name": "tiny"})


def _evil(path, marker) -> None:
    torch.save({"conv_in.weight": _Payload(str(marker))}, path)


def _refused(directory, marker, match):
    with pytest.raises(PriorLoadError, match=match) as info:
        load_prior(directory)
    assert "\n" not in str(info.value)
    assert not marker.exists(), "the pickle payload ran"
    return str(info.value)


def test_payload_really_runs_when_unpickled(tmp_path):
    """The test's own payload is live: plain torch.load without weights_only writes the marker."""
    marker = tmp_path / "marker"
    _evil(tmp_path / "evil.bin", marker)
    torch.load(tmp_path / "evil.bin", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("evil_name", ["evil.bin", "evil.pt"])
def test_index_naming_a_pickle_is_refused(prior_dir, tmp_path, evil_name):
    marker = tmp_path / "marker"
    _evil(prior_dir / evil_name, marker)
    (prior_dir / INDEX).write_text(json.dumps({"metadata": {}, "weight_map": {"conv_in.weight": evil_name}}))
    _refused(prior_dir, marker, "not safetensors")


def test_index_naming_a_pickle_elsewhere_is_refused(prior_dir, tmp_path):
    """The pickle lies outside the folder; only the index names it (with a path)."""
    marker = tmp_path / "marker"
    _evil(tmp_path / "evil.pt", marker)
    (prior_dir / INDEX).write_text(json.dumps({"weight_map": {"conv_in.weight": str(tmp_path / "evil.pt")}}))
    _refused(prior_dir, marker, "not safetensors")


def test_index_with_a_path_is_refused(prior_dir, tmp_path):
    (prior_dir / INDEX).write_text(json.dumps({"weight_map": {"conv_in.weight": "../x.safetensors"}}))
    _refused(prior_dir, tmp_path / "marker", "not a file name")


def test_config_naming_a_pickle_is_refused(prior_dir, tmp_path):
    cfg = json.loads((prior_dir / "config.json").read_text())
    (prior_dir / "config.json").write_text(json.dumps({**cfg, "weights": "evil.ckpt"}))
    _refused(prior_dir, tmp_path / "marker", "evil.ckpt")


@pytest.mark.parametrize("suffix", sorted(REFUSED_SUFFIXES))
def test_any_pickle_suffix_in_the_folder_is_refused(prior_dir, tmp_path, suffix):
    marker = tmp_path / "marker"
    (prior_dir / "unet").mkdir()
    _evil(prior_dir / "unet" / f"diffusion_pytorch_model{suffix.upper()}", marker)
    msg = _refused(prior_dir, marker, "not safetensors")
    assert "diffusion_pytorch_model" in msg


def test_link_leaving_the_folder_is_refused(prior_dir, tmp_path):
    outside = tmp_path / "outside.safetensors"
    (prior_dir / "diffusion_pytorch_model.safetensors").rename(outside)
    os.symlink(outside, prior_dir / "diffusion_pytorch_model.safetensors")
    _refused(prior_dir, tmp_path / "marker", "outside the folder")


def test_linked_folder_leaving_the_folder_is_refused(prior_dir, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    _evil(tmp_path / "elsewhere" / "x.bin", tmp_path / "marker")
    os.symlink(tmp_path / "elsewhere", prior_dir / "unet")
    _refused(prior_dir, tmp_path / "marker", "outside the folder")


def test_link_to_a_device_is_refused(prior_dir, tmp_path):
    os.symlink("/dev/zero", prior_dir / "scheduler_config.json.bak.json")
    _refused(prior_dir, tmp_path / "marker", "outside the folder")


def test_fifo_is_refused(prior_dir, tmp_path):
    os.mkfifo(prior_dir / "extra.json")
    _refused(prior_dir, tmp_path / "marker", "not a regular file")


def test_link_inside_the_folder_loads(prior_dir):
    (prior_dir / "weights").mkdir()
    (prior_dir / "diffusion_pytorch_model.safetensors").rename(prior_dir / "weights" / "w.safetensors")
    os.symlink("weights/w.safetensors", prior_dir / "diffusion_pytorch_model.safetensors")
    assert load_prior(prior_dir).shape == (1, 8, 8)


def test_hub_snapshot_links_into_its_blobs(tmp_path, prior_dir):
    """A hub-cache snapshot (models--*/snapshots/<rev>) links into the repository's blobs/: allowed."""
    repo = tmp_path / "models--someone--tiny"
    snap, blobs = repo / "snapshots" / "abc123", repo / "blobs"
    snap.mkdir(parents=True)
    blobs.mkdir()
    for f in prior_dir.iterdir():
        f.rename(blobs / f.name)
        os.symlink(os.path.relpath(blobs / f.name, snap), snap / f.name)
    check_prior_folder(snap)
    assert load_prior(snap).shape == (1, 8, 8)


def test_deeply_nested_json_is_one_line(prior_dir, tmp_path):
    (prior_dir / "extra.json").write_text("[" * 100_000 + "]" * 100_000)
    _refused(prior_dir, tmp_path / "marker", "nested too deeply|not valid JSON")


def test_cli_refuses_with_one_line(prior_dir, tmp_path):
    marker = tmp_path / "marker"
    _evil(prior_dir / "evil.bin", marker)
    (prior_dir / INDEX).write_text(json.dumps({"weight_map": {"conv_in.weight": "evil.bin"}}))
    out = subprocess.run([sys.executable, "-m", "inverse.cli", "sample-prior", str(prior_dir), "--num-samples", "1",
                          "--out", str(tmp_path / "s.nc")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "not safetensors" in out.stderr, out.stderr
    assert not marker.exists() and not (tmp_path / "s.nc").exists()
