"""Simulation-based calibration (Talts et al. 2018) of NUTS on the MRI T2 model, with a negative control."""

import numpy as np
import pytest

from inverse.calibration.models import T2Relaxation
from inverse.calibration.sbc import rank_uniformity, simulation_based_calibration


def test_rank_uniformity_test_itself():
    rng = np.random.default_rng(0)
    _, p_uniform = rank_uniformity(rng.integers(0, 100, 500), 99, 10)
    _, p_peaked = rank_uniformity(np.clip(rng.normal(50, 10, 500).astype(int), 0, 99), 99, 10)
    assert p_uniform > 0.01 and p_peaked < 1e-10
    # bins of unequal width (101 rank values in 10 bins) get proportional expected counts
    chi2, _ = rank_uniformity(np.arange(101), 100, 10)
    assert chi2 == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="bins"):
        rank_uniformity([0, 1], 3, 5)


def test_sbc_t2_model_200_replications_have_uniform_ranks():
    """200 replications, 99 ranked draws each (one chain, 300 warm-up, 396 kept, thinned by 4), 10 bins.

    All replications run in one compiled program, so this costs about one NUTS compilation (~5-15 s).
    """
    res = simulation_based_calibration(T2Relaxation(), sigma=0.02, num_replications=200, num_warmup=300,
                                       num_samples=396, thin=4, bins=10, seed=0)
    assert res.ranks.shape == (200, 2) and res.num_draws == 99 and res.divergences == 0
    assert res.ranks.min() >= 0 and res.ranks.max() <= 99
    assert min(res.p_values.values()) > 0.01, res.p_values  # chi-square on 9 degrees of freedom


@pytest.mark.slow
def test_sbc_detects_a_wrong_noise_level():
    """Negative control: data simulated with twice the assumed noise give posteriors that are too narrow."""
    wrong = simulation_based_calibration(T2Relaxation(), sigma=0.02, num_replications=200, num_warmup=300,
                                         num_samples=396, thin=4, bins=10, seed=0, data_sigma=0.04)
    assert max(wrong.p_values.values()) < 1e-6
    for name in wrong.names:  # U-shaped: truths fall outside the too-narrow posteriors
        h = wrong.histogram(name)
        assert h[0] + h[-1] > 3 * h[4:6].sum() / 2


def test_sbc_refuses_torch_models_and_bad_settings():
    from inverse.calibration import TorchModel

    m = T2Relaxation()
    tm = TorchModel(m.torch_model(), m.parameters, priors=m.default_priors())
    with pytest.raises(ValueError, match="torch"):
        simulation_based_calibration(tm, sigma=0.02)
    with pytest.raises(ValueError, match="too few"):
        simulation_based_calibration(m, sigma=0.02, num_samples=8, thin=4, bins=10)
