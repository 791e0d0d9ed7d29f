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
from samplers.mcmc import PCN, Potential


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


@pytest.mark.slow  # a local Ray instance and its worker processes
def test_chains_on_ray_equal_serial(local_ray):
    kw = {"warmup": 50, "target_acceptance": 0.3, "adapt_every": 10}
    serial = run_chains_parallel(_kernel(), torch.zeros(3, 2), 200, seeds=[0, 1, 2], **kw)
    remote = run_chains_parallel(_kernel(), torch.zeros(3, 2), 200, seeds=[0, 1, 2], backend="ray", **kw)
    assert serial.draws.shape == (3, 200, 2)
    assert torch.equal(serial.draws, remote.draws) and serial.config["betas"] == remote.config["betas"]
    assert serial.evaluations == remote.evaluations
    assert np.isfinite(remote.summary()["rhat_max"])


@pytest.mark.slow  # Ray workers, each compiling the JAX model
def test_calibrations_on_ray_equal_serial(local_ray):
    from inverse.calibration.models import T2Relaxation

    m = T2Relaxation()
    jobs = [{"model": m, "data": m.simulate(m.default_truth(), 0.02, seed=s), "sigma": 0.02, "num_chains": 1,
             "num_warmup": 50, "num_samples": 50, "seed": s} for s in range(2)]
    serial, remote = calibrate_parallel(jobs), calibrate_parallel(jobs, backend="ray")
    for a, b in zip(serial, remote, strict=False):
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


@pytest.mark.slow  # two JAX compilations per Ray worker: minutes on a loaded 2-core machine
def test_calibrate_command_with_ray_backend_equals_serial_chains(local_ray, tmp_path, capsys):
    """``inverse calibrate --backend ray``: one task per chain (seed + i), merged along ``chain``; the same
    draws as running those single-chain calibrations in this process."""
    from inverse.calibration.io import read_data, read_inference_data
    from inverse.cli import main
    from inverse.parallel import calibrate_chains_parallel

    data, out = tmp_path / "d.nc", tmp_path / "p.nc"
    assert main(["calibrate", "--model", "mri-t2", "--simulate", "--out", str(data), "--quiet"]) == 0
    args = ["calibrate", "--model", "mri-t2", "--data", str(data), "--chains", "2", "--warmup", "60",
            "--samples", "60", "--seed", "3", "--backend", "ray", "--out", str(out), "--quiet"]
    assert main(args) == 0
    remote = read_inference_data(out)
    d = read_data(data, model="mri-t2")
    serial = calibrate_chains_parallel(d.model, d.y, {}, sigma=d.sigma, num_chains=2, num_warmup=60, num_samples=60,
                                       seed=3, backend="serial")
    assert remote.posterior.sizes["chain"] == 2 and remote.posterior.attrs["seeds"].tolist() == [3, 4]
    for name in serial.posterior.data_vars:
        assert np.array_equal(remote.posterior[name].values, serial.posterior[name].values), name
    assert np.isfinite(remote.posterior.attrs["max_rhat"])
    assert main(["calibrate", "--model", "mri-t2", "--data", str(data), "--ray-address", "auto",
                 "--out", str(tmp_path / "q.nc")]) == 2
    assert "--ray-address needs --backend ray" in capsys.readouterr().err
