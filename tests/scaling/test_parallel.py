"""Independent chains and calibrations as Ray tasks (a local 2-CPU Ray instance) equal the serial runs."""

import numpy as np
import pytest
import torch

from forward_models import Gaussian, InverseProblem, MatrixOperator
from inverse.parallel import (
    calibrate_parallel,
    map_tasks,
    merge_chain_results,
    run_chains_parallel,
)
from priors.function_space import StandardGaussian
from samplers.pcn import PCN
from samplers.potential import Potential


def _kernel():
    problem = InverseProblem.simulate(MatrixOperator(torch.eye(2, dtype=torch.float64)), Gaussian(0.5),
                                      torch.ones(2, dtype=torch.float64), seed=0)
    return PCN(Potential(problem), StandardGaussian(2), beta=0.5)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_chains_on_ray_equal_serial(local_ray):
    kw = {"warmup": 50, "target_acceptance": 0.3, "adapt_every": 10}
    serial = run_chains_parallel(_kernel(), torch.zeros(3, 2), 200, seeds=[0, 1, 2], **kw)
    remote = run_chains_parallel(_kernel(), torch.zeros(3, 2), 200, seeds=[0, 1, 2], backend="ray", **kw)
    assert serial.draws.shape == (3, 200, 2)
    assert torch.equal(serial.draws, remote.draws) and serial.config["betas"] == remote.config["betas"]
    assert serial.evaluations == remote.evaluations
    assert np.isfinite(remote.summary()["rhat_max"])


def test_calibrations_on_ray_equal_serial(local_ray):
    from inverse.calibration.models import T2Relaxation

    m = T2Relaxation()
    jobs = [{"model": m, "data": m.simulate(m.default_truth(), 0.02, seed=s), "sigma": 0.02, "num_chains": 1,
             "num_warmup": 50, "num_samples": 50, "seed": s} for s in range(2)]
    serial, remote = calibrate_parallel(jobs), calibrate_parallel(jobs, backend="ray")
    for a, b in zip(serial, remote):
        for v in a.posterior.data_vars:
            np.testing.assert_array_equal(a.posterior[v].values, b.posterior[v].values)


def test_checkpoints_per_chain(tmp_path):
    run_chains_parallel(_kernel(), torch.zeros(2, 2), 20, seeds=[5, 6], checkpoint=tmp_path / "c.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c-chain0.npz", "c-chain1.npz"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        map_tasks(abs, [{"x": 1}], backend="pool")
    with pytest.raises(ValueError, match="one row per seed"):
        run_chains_parallel(_kernel(), torch.zeros(3, 2), 10, seeds=[0, 1])
    with pytest.raises(ValueError, match="must differ"):
        run_chains_parallel(_kernel(), torch.zeros(2, 2), 10, seeds=[0, 0])
    with pytest.raises(ValueError, match="callback"):
        run_chains_parallel(_kernel(), torch.zeros(1, 2), 10, seeds=[0], callback=print)
    with pytest.raises(ValueError, match="no chain results"):
        merge_chain_results([])
    with pytest.raises(ValueError, match="model"):
        calibrate_parallel([{"data": [1.0]}])
