"""DPS / MCG default steps follow the prior's physical units (:func:`inverse.reconstruction.rescale_guidance`).

The same model-space prior in units 0-1 and in grey levels 0-255, on the same measurement expressed in
each unit, must give the same posterior up to the unit change.
"""

import pytest
import torch

from inverse.measurements import simulate
from inverse.reconstruction import DEFAULT_SETTINGS, reconstruct, reference_scale
from priors import GaussianFieldPrior


def _prior(scale: float, offset: float) -> GaussianFieldPrior:
    z = torch.randn(64, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = torch.nn.functional.avg_pool2d(z, 3, 1, 1)
    return GaussianFieldPrior.fit(z, scale=scale, offset=offset, floor=1e-4)


@pytest.mark.parametrize("sampler", ["dps", "mcg"])
def test_grey_levels_and_unit_range_give_the_same_posterior(sampler):
    truth = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert reference_scale("ct") == 0.5  # phantoms-64: physical = 0.5 + 0.5 x
    posts = []
    for scale in (0.5, 127.5):
        m = simulate("ct", options={"size": 16, "angles": 8}, truth=truth * (2 * scale), seed=0)
        posts.append(reconstruct(m, _prior(scale, scale), sampler, num_samples=3, seed=0, steps=8))
    unit, grey = posts
    assert "guidance_rescaled" not in unit.config
    assert grey.config["guidance_rescaled"]["factor"] == pytest.approx(0.5 / 127.5)
    torch.testing.assert_close(grey.samples / 255.0, unit.samples, rtol=1e-4, atol=1e-4)
    assert grey.diagnostics["psnr"] == pytest.approx(unit.diagnostics["psnr"], abs=1e-3)


def test_an_explicit_step_is_kept():
    truth = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    m = simulate("ct", options={"size": 16, "angles": 8}, truth=255 * truth, seed=0)
    post = reconstruct(m, _prior(127.5, 127.5), "dps", num_samples=2, seed=0, steps=4,
                       sampler_options={"zeta": 0.3})
    assert "guidance_rescaled" not in post.config
    assert DEFAULT_SETTINGS["dps"]["ct"]["zeta"] == 0.3
