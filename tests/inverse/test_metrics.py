"""Sample-set distances (inverse.metrics): the weighted sliced Wasserstein and mode TV used to score SMC."""

import pytest
import torch

from inverse.errors import UserError
from inverse.metrics import mode_weight_tv, predictive_coverage, sliced_wasserstein
from priors import GaussianMixture


def test_weighted_sliced_wasserstein_equals_the_repeated_set():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(10, 3, generator=g), torch.randn(40, 3, generator=g) + 0.5
    w = torch.arange(1.0, 11.0)  # integer weights: the same as repeating a_i w_i times (55 points)
    repeated = a.repeat_interleave(w.long(), dim=0)
    b55 = torch.cat([b, b[:15]])
    # equal sizes, equal weights: the sorted-difference formula and the weighted one agree exactly
    assert sliced_wasserstein(repeated, b55, seed=3) == pytest.approx(
        sliced_wasserstein(a, b55, seed=3, weights_a=w), abs=1e-12)
    # unequal sizes are allowed with weights
    assert sliced_wasserstein(a, b, weights_a=torch.ones(10)) > 0.1
    assert sliced_wasserstein(b, b, weights_a=torch.ones(40)) == pytest.approx(0.0, abs=1e-12)


def test_weighted_metrics_reject_bad_weights():
    a = torch.randn(5, 2)
    for bad in (torch.ones(4), torch.tensor([1.0, -1, 1, 1, 1]), torch.full((5,), float("nan")), torch.zeros(5)):
        with pytest.raises(ValueError, match="weights"):
            sliced_wasserstein(a, a, weights_a=bad)
    with pytest.raises(ValueError, match="equal-size"):
        sliced_wasserstein(a, torch.randn(6, 2))


def test_weighted_mode_tv():
    mix = GaussianMixture(torch.tensor([0.25, 0.75], dtype=torch.float64),
                          torch.tensor([[-10.0, 0.0], [10.0, 0.0]], dtype=torch.float64),
                          torch.eye(2, dtype=torch.float64).expand(2, 2, 2).clone())
    x = torch.tensor([[-10.0, 0.0], [10.0, 0.0]], dtype=torch.float64)
    assert mode_weight_tv(x, mix) == pytest.approx(0.25)  # equal weights: 0.5 / 0.5
    assert mode_weight_tv(x, mix, weights=torch.tensor([1.0, 3.0])) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [2, 8, 64])
def test_prediction_interval_covers_one_more_draw_at_its_level(n):
    """The truth drawn like the samples: the Student-t prediction interval covers it 90% of the time at any n
    (Monte Carlo over 40,000 independent entries, sd 0.0015), while the 5-95% quantile band of 8 draws covers only
    about 0.9 * 7 / 9."""
    g = torch.Generator().manual_seed(n)
    x = 3.0 + 0.5 * torch.randn(n + 1, 40000, generator=g, dtype=torch.float64)
    assert predictive_coverage(x[:n], x[n]) == pytest.approx(0.9, abs=0.01)
    assert predictive_coverage(x[:n], x[n], level=0.5) == pytest.approx(0.5, abs=0.01)
    if n == 8:
        q = torch.quantile(x[:n], torch.tensor([0.05, 0.95], dtype=torch.float64), dim=0)
        band = float(((x[n] >= q[0]) & (x[n] <= q[1])).double().mean())
        assert band == pytest.approx(0.9 * 7 / 9, abs=0.03)
    if n >= 8:  # over-dispersed samples over-cover, under-dispersed under-cover
        assert predictive_coverage(3.0 + 2 * (x[:n] - 3.0), x[n]) > 0.97
        assert predictive_coverage(3.0 + 0.3 * (x[:n] - 3.0), x[n]) < 0.6


def test_prediction_interval_refuses_bad_input():
    with pytest.raises(UserError, match="at least 2 samples"):
        predictive_coverage(torch.zeros(1, 3), torch.zeros(3))
    with pytest.raises(UserError, match="do not stack"):
        predictive_coverage(torch.zeros(4, 3), torch.zeros(2))
    with pytest.raises(UserError, match="level"):
        predictive_coverage(torch.zeros(4, 3), torch.zeros(3), level=1.5)
