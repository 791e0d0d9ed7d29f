"""Static checks: pyflakes' rules (undefined names, unused imports, ``__all__`` naming what does not
exist), syntax errors and bugbear's B023 (a closure defined in a loop that reads the loop variable when
called, not when defined) over the whole tree, through ruff (``[tool.ruff]`` in pyproject.toml)."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_tree_passes_pyflakes_rules():
    """An undefined name or a stale ``__all__`` entry fails here, not at a user's import."""
    ruff = pytest.importorskip("ruff", reason="ruff is in the test extra")
    exe = ruff.find_ruff_bin()
    proc = subprocess.run([exe, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
