"""Validation at the API entry points: one-line errors naming the problem (the command line's exit 2
for the same inputs is fuzzed in test_fuzz.py)."""

import json
import math
import shutil

import pytest
import torch

from forward_models import Gaussian, InverseProblem, MatrixOperator
from forward_models.registry import get_operator
from inverse.problems import get_problem, problem_options
from priors import GaussianPrior, load_prior
from priors.loading import PriorLoadError
from samplers import DPS, get_sampler, run
from samplers.base import resolve_device


def _problem(dy=2, d=4):
    op = MatrixOperator(torch.ones(dy, d, dtype=torch.float64))
    return InverseProblem(op, torch.zeros(dy, dtype=torch.float64), Gaussian(0.1))


def _one_line(excinfo):
    assert "\n" not in str(excinfo.value) and str(excinfo.value)


@pytest.mark.parametrize("make, error, message", [
    (lambda: InverseProblem(MatrixOperator(torch.ones(2, 4)), torch.zeros(3), Gaussian(0.1)), ValueError,
     r"measurement has shape \(3,\)"),
    (lambda: InverseProblem(MatrixOperator(torch.ones(2, 4)), torch.tensor([0.0, math.nan]), Gaussian(0.1)),
     ValueError, "NaN or Inf"),
    (lambda: InverseProblem(MatrixOperator(torch.ones(2, 4)), torch.tensor([0.0, math.inf]), Gaussian(0.1)),
     ValueError, "NaN or Inf"),
    (lambda: Gaussian(0.0), ValueError, "positive and finite"),
    (lambda: Gaussian(-1.0), ValueError, "positive and finite"),
    (lambda: Gaussian(math.nan), ValueError, "positive and finite"),
    (lambda: get_operator("matrx"), ValueError, "did you mean"),
    (lambda: get_sampler("tdss"), ValueError, "did you mean 'tds'"),
    (lambda: get_sampler("dps", num_steps=1e999), ValueError, "'num_steps' of 'dps' must be an integer"),
    (lambda: get_sampler("dps", num_steps=2.5), ValueError, "must be an integer, got 2.5"),
    (lambda: get_sampler("tds", kappa="x"), ValueError, "must be a number"),
    (lambda: get_sampler("dps", bogus=1), ValueError, "unexpected keyword"),
    (lambda: get_problem("mr"), ValueError, "did you mean 'mri'"),
    (lambda: problem_options("ct", size=1e999), ValueError, "must be a int"),
    (lambda: problem_options("ct", sizes=3), ValueError, "has no option 'sizes'"),
    (lambda: load_prior("phantoms-46"), PriorLoadError, "did you mean 'phantoms-64'"),
    (lambda: resolve_device("tpu"), ValueError, "unknown device"),
    (lambda: run(DPS(num_steps=2), _problem(), GaussianPrior(torch.zeros(3)), 4), ValueError,
     r"shape \(3,\) but the forward model expects \(4,\)"),
    (lambda: run(DPS(num_steps=2), _problem(), GaussianPrior(torch.zeros(4)), 0), ValueError, "num_samples"),
    (lambda: run(DPS(num_steps=2), _problem(), GaussianPrior(torch.zeros(4)), float("inf")), ValueError,
     "num_samples"),
    (lambda: run(DPS(num_steps=2), _problem(), GaussianPrior(torch.zeros(4)), 2, device="gpu0"), ValueError,
     "unknown device"),
])
def test_bad_input_is_named_in_one_line(make, error, message):
    with pytest.raises(error, match=message) as e:
        make()
    _one_line(e)


@pytest.fixture
def prior_dir(tmp_path, ct_files):
    d = tmp_path / "prior"
    shutil.copytree(ct_files[1], d)
    return d


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "config.json").unlink(), "not a diffusers model"),
    (lambda d: (d / "diffusion_pytorch_model.safetensors").rename(d / "diffusion_pytorch_model.bin"),
     "only safetensors"),
    (lambda d: (d / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 100), "could not load the UNet"),
    (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "config.json").write_text("[1, 2]"), "JSON object"),
    (lambda d: (d / "scheduler_config.json").unlink(), "no scheduler configuration"),
    (lambda d: _edit_card(d, shape=[1, 8, 8]), "does not match the network"),
    (lambda d: _edit_card(d, dims=["y", "x"]), "'dims' must list 3"),
    (lambda d: _edit_card(d, normalisation={"scale": 0}), "bad 'normalisation'"),
    (lambda d: _edit_card(d, normalisation="linear"), "bad 'normalisation'"),
    (lambda d: _edit_card(d, sigma_max=-1), "sigma_max must be a positive number"),
    (lambda d: _edit_card(d, kind="gan"), "unknown prior kind"),
])
def test_broken_prior_directories_are_refused(prior_dir, damage, message):
    load_prior(prior_dir)  # intact
    damage(prior_dir)
    with pytest.raises(PriorLoadError, match=message) as e:
        load_prior(prior_dir)
    _one_line(e)


def _edit_card(d, **changes):
    card = json.loads((d / "prior.json").read_text())
    card.update(changes)
    (d / "prior.json").write_text(json.dumps(card))


def test_a_directory_that_is_not_a_model_and_a_file_that_is_not_a_directory(tmp_path):
    with pytest.raises(PriorLoadError, match="not a diffusers model"):
        load_prior(tmp_path)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(PriorLoadError, match="is a file"):
        load_prior(tmp_path / "f.txt")


@pytest.mark.parametrize("make, error", [
    (lambda: Gaussian(-1.0), "forward_models.ForwardModelError"),
    (lambda: get_operator("matrx"), "forward_models.ForwardModelError"),
    (lambda: GaussianPrior(torch.zeros(2), std=-1.0), "priors.PriorError"),
    (lambda: load_prior("phantoms-46"), "priors.PriorLoadError"),
    (lambda: get_problem("mr"), "inverse.errors.UserError"),
    (lambda: problem_options("ct", sizes=3), "inverse.errors.UserError"),
])
def test_each_package_raises_its_own_user_error(make, error):
    """Validation raises the package's own type, a ValueError and one of inverse.errors.USER_ERRORS."""
    import importlib

    from inverse.errors import USER_ERRORS

    module, name = error.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, ValueError) and issubclass(cls, USER_ERRORS)
    with pytest.raises(cls):
        make()
