"""Study (issue 6): generalised-pCN delayed acceptance on the Darcy benchmark problem, 32 x 32, with a
coarse-grid pilot; prints the pilot, the chain's ESS / R-hat / solves, per-chain means and potentials.

Started from the pilot's final states (as now), every chain mixes (ESS ~560 from ~1,130 fine solves);
started from prior draws instead (the first version), one chain stayed at potential ~88 against ~-63
for the others (R-hat 1.54): the reason ``pilot_reference`` returns the pilot's final states.

    python scripts/gpcn_pilot_study.py
"""

__all__ = []

import sys  # noqa: E401
import time

import torch

sys.path.insert(0, 'scripts'); sys.path.insert(0, '.')
torch.set_num_threads(1)
import bench_mcmc_darcy as b

from forward_models import InverseProblem
from priors.function_space import StandardGaussian
from samplers.chains import run_chains
from samplers.delayed_acceptance import MLDA
from samplers.potential import Potential

n=32
prior, problem, xi = b.build_problem(n, 16, 0.02, 0)
measure = StandardGaussian(16)
cfm = problem.forward_model.coarse(n // 16); cfm.check_finite=False
coarse = Potential(InverseProblem(cfm, problem.y, problem.noise), prior.field, name="coarse")
fine = Potential(problem, prior.field, name="fine")
u0 = measure.sample(4, torch.Generator().manual_seed(11))
for rounds in [2]:
    ref, u0, pilot = b._pilot_reference(coarse, measure, u0, 1500, 300, 0, rounds=rounds)
    print(rounds, pilot, flush=True)
    t=time.time()
    r = run_chains(MLDA([coarse, fine], measure, 20, 0.5, randomize=True, reference=ref), u0, 300, seed=0, warmup=50, target_acceptance=0.25, adapt_every=2)
    s=r.summary(); print(s["ess_min"], s["rhat_max"], s["fine_solves"], s["acceptance"], r.beta, time.time()-t, flush=True)
print("per-chain mean", r.draws.mean(1)[:, :6])
print("per-chain potential mean", r.potentials.mean(1), "min", r.potentials.min(1).values)
print("ess", r.ess())
print("ref mean", ref.mean[:6], "truth", xi[0,:6])
