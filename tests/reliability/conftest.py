"""Fixtures of the reliability tests: a small CT measurement file and a tiny EDM prior directory."""

import pytest
import torch

from inverse.measurements import simulate
from priors import EDMPrior
from priors.loading import save_prior
from priors.training import build_unet


@pytest.fixture(scope="session")
def ct_files(tmp_path_factory):
    """``(measurements.nc, prior directory)``: CT at 16 x 16 with 8 angles, and a random 16 x 16 EDM network."""
    d = tmp_path_factory.mktemp("ct")
    y = simulate("ct", options={"size": 16, "angles": 8}, seed=0).to_netcdf(d / "y.nc")
    torch.manual_seed(0)
    prior = EDMPrior(build_unet(16, 1, widths=(8, 8)), (1, 16, 16))
    return y, save_prior(prior, d / "prior", {"name": "tiny-edm"})
