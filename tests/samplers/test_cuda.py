"""Every registered sampler runs on a CUDA device and agrees with its CPU run in distribution
(skipped where no GPU is present; run on the leased GPU machine, see docs/scaling.md)."""

import pytest
import torch

from inverse.problems import evaluate_sampler, gmm_case
from samplers import SAMPLERS, get_sampler

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_runs_on_cuda_and_scores_like_the_cpu(name):
    steps = {"eki": 20}.get(name, 40)
    scores = {}
    for device in ("cpu", "cuda"):
        case = gmm_case(8, 2, 0, device=device)
        sampler = get_sampler(name, **({"num_iterations": steps} if name == "eki" else {"num_steps": steps}))
        r = evaluate_sampler(case, sampler, 128, seed=0)
        post = r["posterior"]
        assert post.samples.device.type == device and bool(torch.isfinite(post.samples).all())
        scores[device] = r["sw"] / r["sw_floor"]
    # same algorithm, different random streams: the two scores agree within Monte Carlo spread
    assert scores["cuda"] < 2.0 * scores["cpu"] + 1.0, scores


@pytest.mark.parametrize("kind", ["mri", "ct"])
def test_structured_bases_on_cuda_match_the_cpu(kind):
    """The per-row MRI basis and the CT range basis built for a problem on the GPU: same singular values and the same
    likelihood as on the CPU, and DDRM samples there."""
    from forward_models import Gaussian, InverseProblem
    from forward_models.mri import RealImageMRI, SingleCoilMRI
    from forward_models.tomography import ParallelBeamCT
    from priors import GaussianPrior
    from samplers.smc import LinearGaussian

    f64 = torch.float64
    fm = RealImageMRI(SingleCoilMRI.cartesian(32, acceleration=4, seed=0)) if kind == "mri" else ParallelBeamCT(32, 16)
    g = torch.Generator().manual_seed(0)
    y = fm(torch.rand(1, *fm.input_shape, generator=g, dtype=f64))[0] + 0.05 * torch.randn(fm.output_shape, generator=g,
                                                                                          dtype=f64)
    problem = InverseProblem(fm, y, Gaussian(0.05))
    lgs = {}
    for device in ("cpu", "cuda"):
        prior = GaussianPrior(torch.zeros(fm.input_shape, dtype=f64)).to(device)
        lgs[device] = LinearGaussian.from_problem(problem.to(torch.device(device)), prior)
        post = get_sampler("ddrm", num_steps=10).sample(problem, prior, 4, seed=0, device=device)
        assert post.samples.device.type == device and bool(torch.isfinite(post.samples).all())
    cpu, gpu = lgs["cpu"], lgs["cuda"]
    torch.testing.assert_close(torch.sort(gpu.s.cpu()).values, torch.sort(cpu.s).values, rtol=1e-8, atol=1e-10)
    x = torch.randn(3, *fm.input_shape, generator=g, dtype=f64)
    var = torch.full((cpu.rank,), 0.05**2, dtype=f64)
    torch.testing.assert_close(gpu.log_twist(gpu.project(x.cuda()), var.cuda()).cpu(),
                               cpu.log_twist(cpu.project(x), var), rtol=1e-8, atol=1e-6)
