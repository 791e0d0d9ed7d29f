"""Study (issue 5): SMC at d = 80 with more particles than scored samples.

``python scripts/smc_particles_study.py N n SAMPLER...`` runs each sampler with N particles, resamples n
draws and scores them against n exact draws (SW / floor, mean and median over seeds 0-4, dy = 1, 2, 4).
The closing note's "1024 particles resampled to 256" figures come from
``python scripts/smc_particles_study.py 1024 256 tds mcgdiff afes``.
"""

__all__ = []

import statistics
import sys
import time

import torch

sys.path.insert(0,'.')
torch.set_num_threads(1)
from inverse.harness import gmm_case
from inverse.metrics import sliced_wasserstein
from samplers import get_sampler

N, n = int(sys.argv[1]), int(sys.argv[2])
for name in sys.argv[3:]:
  for dy in [1,2,4]:
    rs=[]
    for seed in range(5):
        case = gmm_case(80, dy, seed)
        t=time.time()
        post = get_sampler(name, num_steps=100).sample(case.problem, case.prior, N, seed=seed)
        g = torch.Generator().manual_seed(10_000 + seed)
        x = post.resample(n, g).cpu(); r1 = case.posterior.sample(n, g); r2 = case.posterior.sample(n, g)
        rs.append((sliced_wasserstein(x, r1, 1000, seed=seed), sliced_wasserstein(r2, r1, 1000, seed=seed), time.time()-t))
    print(name, N, n, dy, "mean ratio %.2f" % (statistics.mean(a for a,_,_ in rs)/statistics.mean(b for _,b,_ in rs)), f"median {statistics.median(a/b for a,b,_ in rs):.2f}", f"t {statistics.mean(c for *_,c in rs):.1f}", flush=True)
