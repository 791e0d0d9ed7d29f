"""Package discovery, the one part of the build that pyproject.toml's ``find`` directive cannot express.

The code packages are found as usual. The shipped priors stay in ``data/priors/`` (the layout of
DESIGN.md) and install as the package ``priors.shipped``, mapped onto that directory, with their files
as its package data (``[tool.setuptools.package-data]`` in pyproject.toml). :func:`priors.load_prior`
finds them through ``importlib.resources``, so an editable and a regular ``pip install .`` behave alike.
Everything else (metadata, dependencies, package data) is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["inverse*", "priors*", "forward_models*", "samplers*"]),
                "priors.shipped"],
      package_dir={"priors.shipped": "data/priors"})
