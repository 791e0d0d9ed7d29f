"""Static checks over the whole tree through ruff, with the rules of ``[tool.ruff.lint]`` in pyproject.toml:
pyflakes (F: undefined names, unused imports, ``__all__`` naming what does not exist), syntax errors (E9),
import order (I), bugbear (B: e.g. a closure in a loop that reads the loop variable when called, not when
defined), pyupgrade (UP) and the line length of 120 columns (E501)."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_tree_passes_ruff():
    """An undefined name or a stale ``__all__`` entry fails here, not at a user's import."""
    ruff = pytest.importorskip("ruff", reason="ruff is in the test extra")
    exe = ruff.find_ruff_bin()
    proc = subprocess.run([exe, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_selects_the_agreed_rules():
    """Dropping a rule from pyproject.toml would make the check above silently weaker."""
    import tomllib

    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert lint["line-length"] == 120
    assert {"F", "E9", "I", "B", "UP", "E501"} <= set(lint["lint"]["select"])
