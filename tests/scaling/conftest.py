"""Helpers of the scaling tests: run the ``inverse`` command in a subprocess (DDP relaunches its own ranks)."""

import os
import subprocess
import sys


def run_inverse(args, cwd, timeout=240):
    """``python -m inverse.cli ARGS`` with one thread per process; returns the CompletedProcess (checked)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("MASTER_PORT", None)
    r = subprocess.run([sys.executable, "-m", "inverse.cli", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout, check=False)
    assert r.returncode == 0, f"inverse {' '.join(map(str, args))} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r
