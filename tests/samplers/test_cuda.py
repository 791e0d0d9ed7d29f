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
