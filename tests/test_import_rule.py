"""The import rule of the four packages (docs: DESIGN.md), checked on their source with :mod:`ast`.

- ``priors`` and ``forward_models`` import none of the other three packages.
- ``samplers`` imports only the public contracts of ``priors`` and ``forward_models``
  (:data:`SAMPLERS_MAY_IMPORT`).
- Nothing imports ``inverse`` except ``inverse`` itself; nothing imports ``scripts`` or ``tests``.
- No package touches ``sys.path`` or loads a file by its path (``spec_from_file_location``, ``SourceFileLoader``,
  ``runpy.run_path``).

Every import counts: relative ones, those inside functions or ``if TYPE_CHECKING:`` blocks, ``from pkg import
submodule`` (resolved to the submodule), and ``importlib.import_module("name")`` / ``__import__("name")`` with a
literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

__all__ = ["PACKAGES", "SAMPLERS_MAY_IMPORT", "import_rule_violations"]

ROOT = Path(__file__).resolve().parents[1]

#: the four packages the rule covers
PACKAGES = ("priors", "forward_models", "samplers", "inverse")

#: the only modules of ``priors`` / ``forward_models`` that ``samplers`` may import: their public contracts
SAMPLERS_MAY_IMPORT = frozenset({
    "priors", "priors.base", "priors.errors",
    "forward_models", "forward_models.base", "forward_models.problem", "forward_models.noise",
    "forward_models.linalg", "forward_models.singular_basis", "forward_models.errors",
})

#: imported by none of the packages
NEVER_IMPORTED = ("scripts", "tests")

#: names whose use loads a module from a file path instead of by its import name
LOADS_BY_PATH = ("spec_from_file_location", "SourceFileLoader", "run_path")


def _is_module(root: Path, dotted: str) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _literal_import_call(node: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("m")`` / ``import_module("m")`` / ``__import__("m")``."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """``(line, dotted module)`` for every import in the file at ``path`` (a module of the tree at ``root``).

    ``from a import b`` gives ``a.b`` when ``a/b.py`` or ``a/b/`` is a module of the tree, else ``a``; relative
    imports are resolved against the file's package.
    """
    package = list(path.relative_to(root).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:max(0, len(package) - node.level + 1)] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            for alias in node.names:
                sub = f"{module}.{alias.name}" if module else alias.name
                found.append((node.lineno, sub if alias.name != "*" and _is_module(root, sub) else module))
        elif isinstance(node, ast.Call) and (name := _literal_import_call(node)):
            found.append((node.lineno, name))
    return sorted(set(found))


def _path_tricks(path: Path) -> list[tuple[int, str]]:
    """``(line, what)`` for each use of ``sys.path`` or of a load-by-path function in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
                and node.value.id == "sys":
            found.append((node.lineno, "sys.path"))
        elif isinstance(node, ast.ImportFrom) and node.module == "sys" and any(a.name == "path" for a in node.names):
            found.append((node.lineno, "sys.path"))
        elif isinstance(node, ast.Attribute) and node.attr in LOADS_BY_PATH:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Name) and node.id in LOADS_BY_PATH:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.ImportFrom) and any(a.name in LOADS_BY_PATH for a in node.names):
            found.append((node.lineno, next(a.name for a in node.names if a.name in LOADS_BY_PATH)))
    return found


def _rule_broken(package: str, module: str) -> str | None:
    """Why ``package`` may not import ``module``, or None when it may."""
    top = module.split(".")[0]
    if top in NEVER_IMPORTED:
        return f"nothing imports {top}"
    if top == "inverse" and package != "inverse":
        return "nothing imports inverse except inverse itself"
    if package in ("priors", "forward_models") and top in PACKAGES and top != package:
        return f"{package} imports none of {', '.join(p for p in PACKAGES if p != package)}"
    if package == "samplers" and top in ("priors", "forward_models") and module not in SAMPLERS_MAY_IMPORT:
        return "samplers imports only the contracts in SAMPLERS_MAY_IMPORT"
    return None


def import_rule_violations(root: Path) -> list[str]:
    """Every break of the import rule in the packages under ``root``, as ``file:line: module (rule)`` lines."""
    root = Path(root)
    out = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            where = path.relative_to(root).as_posix()
            for line, module in imports_of(path, root):
                if reason := _rule_broken(package, module):
                    out.append(f"{where}:{line}: imports {module} ({reason})")
            out += [f"{where}:{line}: uses {what} (packages import by name, never by path)"
                    for line, what in _path_tricks(path)]
    return out


def test_the_packages_keep_the_import_rule():
    violations = import_rule_violations(ROOT)
    assert not violations, "import rule broken:\n" + "\n".join(violations)


def test_the_benchmark_suite_is_not_in_the_packages():
    """The benchmark suite lives in scripts/benchmarks/ (run by path, never imported), outside the installed
    packages."""
    import importlib.util

    for name in ("inverse.benchmarking", "inverse.harness", "inverse.report"):
        assert importlib.util.find_spec(name) is None, name


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_planted_violations(tmp_path):
    _write(tmp_path, {
        "priors/__init__.py": "",
        "priors/base.py": "",
        "priors/ode.py": "def f():\n    from samplers import run\n",  # inside a function
        "forward_models/__init__.py": "",
        "forward_models/base.py": "from ..priors import base\n",  # relative, across packages
        "samplers/__init__.py": "from priors import GaussianPrior\nfrom forward_models.problem import P\n",
        "samplers/smc/__init__.py": "from ...priors import ode\n",  # a submodule by `from package import`
        "samplers/smc/tds.py": "from .. import base\nimport priors.ode as ode\n",
        "samplers/base.py": "import importlib\nm = importlib.import_module('inverse.cli')\n",
        "inverse/__init__.py": "import sys\nsys.path.insert(0, 'x')\nfrom scripts import bench\n",
        "inverse/load.py": "from importlib.util import spec_from_file_location\n",
    })
    found = import_rule_violations(tmp_path)
    expected = [
        "priors/ode.py:2: imports samplers ",
        "forward_models/base.py:1: imports priors.base ",
        "samplers/base.py:2: imports inverse.cli ",
        "samplers/smc/__init__.py:1: imports priors.ode ",
        "samplers/smc/tds.py:2: imports priors.ode ",
        "inverse/__init__.py:3: imports scripts ",
        "inverse/__init__.py:2: uses sys.path ",
        "inverse/load.py:1: uses spec_from_file_location ",
    ]
    for start in expected:
        assert sum(v.startswith(start) for v in found) == 1, (start, found)
    assert len(found) == len(expected), found


def test_the_checker_accepts_what_the_rule_allows(tmp_path):
    _write(tmp_path, {
        "priors/__init__.py": "from priors.base import Prior\nfrom . import ode\n",
        "priors/base.py": "import torch\n",
        "priors/ode.py": "",
        "forward_models/__init__.py": "from .problem import InverseProblem\n",
        "forward_models/problem.py": "from forward_models import base\n",
        "forward_models/base.py": "",
        "samplers/__init__.py": "from priors import Prior\nfrom forward_models import problem, base\n",
        "samplers/smc/tds.py": "from ..base import x\nfrom samplers.smc import y\nfrom priors.base import Prior\n",
        "samplers/base.py": "",
        "inverse/cli.py": "import importlib\nimportlib.import_module('inverse.commands')\nfrom samplers import run\n",
    })
    assert import_rule_violations(tmp_path) == []
