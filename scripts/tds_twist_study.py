"""Study (issue 5): TDS twist variance ``c s^2 / (c + s^2)`` instead of ``s^2`` on the d = 80 mixture harness.

Monkeypatches ``TwistedDiffusionSampler.log_twist`` for c in (None = the default s^2, 1, 4); 256 particles,
100 steps, seeds 0-4, dy = 1, 2, 4; prints mean and median SW / floor and the mode-weight TV.
The figures quoted under the SMC table of BENCHMARKS.md come from this script.

    python scripts/tds_twist_study.py
"""

__all__ = []

import statistics
import sys

import torch

sys.path.insert(0,'.')
torch.set_num_threads(1)
import samplers.tds as T
from inverse.harness import evaluate_sampler, gmm_case
from samplers import get_sampler

orig = T.TwistedDiffusionSampler.log_twist
def make(c):
    def lt(self, problem, prior, model, x0, s):
        lg = model["lg"]; sy2 = problem.noise.sigma**2
        v = s**2 if c is None else c*s**2/(c+s**2)
        return lg.log_twist(lg.project(x0), sy2 + v * lg.s**2)
    return lt
for c in [None, 1.0, 4.0]:
    T.TwistedDiffusionSampler.log_twist = make(c)
    for dy in [1,2,4]:
        rs=[]
        for seed in range(5):
            case = gmm_case(80, dy, seed)
            r = evaluate_sampler(case, get_sampler("tds", num_steps=100), 256, seed=seed, num_slices=1000)
            rs.append((r["sw"], r["sw_floor"], r["tv"]))
        print(c, dy, "mean ratio %.2f" % (statistics.mean(a for a,_,_ in rs)/statistics.mean(b for _,b,_ in rs)),
              f"median {statistics.median(a/b for a,b,_ in rs):.2f}", f"tv {statistics.mean(t for *_,t in rs):.3f}", flush=True)
