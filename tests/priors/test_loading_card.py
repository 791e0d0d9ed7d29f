"""A diffusers folder without a model card: ``load_prior`` warns about what it assumes, and takes the
normalisation as arguments (``data_range=``, ``normalisation=``, ``units=``) instead, without a warning."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from priors import EDMPrior, Normalisation, PriorLoadError, load_prior, save_prior
from tests.priors.test_contract import _tiny_unet

ENDS = torch.tensor([-1.0, 1.0])


@pytest.fixture
def bare_dir(tmp_path):
    """A diffusers folder (config, weights, scheduler) without prior.json."""
    d = save_prior(EDMPrior(_tiny_unet(0), (1, 8, 8), normalisation=Normalisation(5.0, 7.0, "K")), tmp_path / "m")
    (d / "prior.json").unlink()
    return d


def _quiet_load(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_prior(path, **kwargs)


def test_no_card_warns_and_assumes_identity(bare_dir):
    with pytest.warns(UserWarning, match=r"no prior\.json.*identity normalisation.*data_range") as rec:
        prior = load_prior(bare_dir)
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    assert prior.normalisation == Normalisation() and prior.normalisation.units == ""
    torch.testing.assert_close(prior.to_physical(ENDS), ENDS)


def test_data_range_maps_minus_one_one_onto_it(bare_dir):
    prior = _quiet_load(bare_dir, data_range=(0, 1))
    torch.testing.assert_close(prior.to_physical(ENDS), torch.tensor([0.0, 1.0]))
    prior = _quiet_load(bare_dir, data_range=(1500, 4500), units="m/s")
    torch.testing.assert_close(prior.to_physical(ENDS), torch.tensor([1500.0, 4500.0]))
    assert prior.normalisation.units == "m/s" and prior.config()["normalisation"]["units"] == "m/s"


@pytest.mark.parametrize("norm", [Normalisation(2.0, 3.0, "Pa"), {"scale": 2.0, "offset": 3.0, "units": "Pa"}])
def test_normalisation_argument(bare_dir, norm):
    prior = _quiet_load(bare_dir, normalisation=norm)
    assert prior.normalisation == Normalisation(2.0, 3.0, "Pa")


def test_units_alone_still_warns_about_the_range(bare_dir):
    with pytest.warns(UserWarning, match="no prior.json"):
        prior = load_prior(bare_dir, units="K")
    assert prior.normalisation == Normalisation(1.0, 0.0, "K")


def test_arguments_override_the_card(bare_dir):
    (bare_dir / "prior.json").write_text(json.dumps({"normalisation": {"scale": 9.0, "offset": 1.0, "units": "s"}}))
    assert _quiet_load(bare_dir).normalisation == Normalisation(9.0, 1.0, "s")
    assert _quiet_load(bare_dir, data_range=(0, 2)).normalisation == Normalisation(1.0, 1.0, "s")
    assert _quiet_load(bare_dir, units="ms").normalisation == Normalisation(9.0, 1.0, "ms")


@pytest.mark.parametrize("kwargs, match", [
    ({"data_range": (1, 0)}, "low < high"), ({"data_range": (0, float("nan"))}, "finite"),
    ({"data_range": "ab"}, "two numbers"), ({"data_range": (0, 1, 2)}, "two numbers"),
    ({"data_range": (0, 1), "normalisation": Normalisation()}, "not both"),
    ({"normalisation": {"scale": 0}}, "bad normalisation"), ({"normalisation": 3}, "Normalisation or a dict"),
    ({"units": "u" * 201}, "units"), ({"units": 5}, "units"),
])
def test_bad_arguments(bare_dir, kwargs, match):
    with pytest.raises(PriorLoadError, match=match):
        _quiet_load(bare_dir, **kwargs)


def test_shipped_priors_load_without_a_warning():
    prior = _quiet_load("phantoms-64")
    assert prior.normalisation.units
