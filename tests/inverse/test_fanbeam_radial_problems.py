"""The fan-beam CT and radial MRI problems through the user's path: simulate -> file -> reconstruct."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inverse.cli import main
from inverse.measurements import open_measurements, simulate
from inverse.problems import build_forward_model, measurement_view
from inverse.reconstruction import reconstruct
from priors import GaussianPrior

SMALL = {
    "ct-fanbeam": {"size": 16, "angles": 12},
    "mri-radial": {"size": 16, "spokes": 12},
    "mri-radial-multicoil": {"size": 16, "spokes": 8, "coils": 4},
}


def _prior():
    return GaussianPrior(torch.full((1, 16, 16), 0.3), std=0.3, dtype=torch.float32)


@pytest.mark.filterwarnings("ignore:.*particle weights collapsed")  # 2 particles, 2 steps
@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("sampler", ["dps", "mcg", "mcgdiff"])
def test_simulate_then_reconstruct_two_steps(tmp_path, name, sampler):
    m = simulate(name, options=SMALL[name], seed=0)
    path = m.to_netcdf(tmp_path / "y.nc")
    post = reconstruct(path, _prior(), sampler, num_samples=2, steps=2, seed=1)
    assert post.samples.shape == (2, 1, 16, 16)
    assert bool(torch.isfinite(post.samples).all())
    d = post.diagnostics
    assert np.isfinite(d["misfit"]) and np.isfinite(d["relative_l2"])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_direct_reconstruction_beats_a_blank_image(name):
    m = simulate(name, options={**SMALL[name], "size": 32}, seed=2)
    view = measurement_view(name, m.forward_model, m.y[None])[0]
    assert float((view - m.truth).norm()) < 0.6 * float(m.truth.norm())


def test_options_are_checked_before_building():
    with pytest.raises(ValueError, match="source_distance"):
        build_forward_model("ct-fanbeam", {"source_distance": 0.5})
    with pytest.raises(ValueError, match="spokes"):
        build_forward_model("mri-radial", {"spokes": 0})
    with pytest.raises(ValueError, match="trajectory"):
        build_forward_model("mri-radial", {"trajectory": "spiral"})


def test_command_line(tmp_path, capsys):
    y, p = tmp_path / "y.nc", tmp_path / "p.nc"
    assert main(["simulate", "--problem", "mri-radial", "-o", "size=16", "-o", "spokes=6", "--seed", "2",
                 "--out", str(y)]) == 0
    m = open_measurements(y)
    assert m.options["spokes"] == 6 and tuple(m.y.shape) == (2, 6, 32)
    assert main(["reconstruct", str(y), "--prior", "gaussian:0.3", "--num-samples", "2", "--steps", "2",
                 "--out", str(p), "--quiet"]) == 0
    assert "gridding" in capsys.readouterr().out
    assert main(["simulate", "--problem", "ct-fanbeam", "-o", "detector_distance=1", "--out",
                 str(tmp_path / "bad.nc")]) == 2
    assert "detector_distance" in capsys.readouterr().err and not (tmp_path / "bad.nc").exists()
