"""Import the benchmark scripts of ``scripts/`` as modules (they are command lines, not a package).

The suite reuses their functions (``scripts/bench_enkg_ns.py``'s run and report, the command lines of
``scripts/bench_calibration.py`` and ``scripts/bench_mcmc_darcy.py``) instead of copying them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

__all__ = ["SCRIPTS_DIR", "load_script", "script_exists"]

#: the repository's scripts/ directory
SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"


def script_exists(name: str) -> bool:
    """Whether ``scripts/<name>.py`` is present."""
    return (SCRIPTS_DIR / f"{name}.py").is_file()


def load_script(name: str):
    """``scripts/<name>.py`` as a module (cached in ``sys.modules`` under ``_bench_scripts.<name>``)."""
    mod_name = f"_bench_scripts.{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    path = SCRIPTS_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[mod_name]
        raise
    return module
