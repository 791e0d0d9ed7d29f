"""SW/floor of the SMC samplers at 100 vs 400 steps (256 particles, seeds 0-2, dy 1, 2, 4): is the gap
to the floor discretisation or particle degeneracy?  python scripts/smc_steps_study.py
"""
import statistics

import torch

torch.set_num_threads(1)
from inverse.harness import evaluate_sampler, gmm_case
from samplers import get_sampler

for name in ["tds", "mcgdiff", "afes"]:
    for steps in [100, 400]:
        for d in [8, 80]:
            rs = []
            for seed in range(3):
                for dy in [1, 2, 4]:
                    case = gmm_case(d, dy, seed)
                    r = evaluate_sampler(case, get_sampler(name, num_steps=steps), 256, seed=seed)
                    rs.append(r["sw"] / r["sw_floor"])
            print(name, steps, d, "mean", round(statistics.fmean(rs), 2), "median", round(statistics.median(rs), 2), [round(x, 2) for x in rs], flush=True)
