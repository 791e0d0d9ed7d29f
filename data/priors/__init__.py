"""The shipped priors, installed as the package ``priors.shipped`` (package data; see setup.py).

Each directory ``<name>/`` holds one prior in diffusers layout (``config.json``,
``diffusion_pytorch_model.safetensors``, ``scheduler_config.json``) with its model card ``prior.json``
and a figure of samples. Load one by name with :func:`priors.load_prior`; list them with
:func:`priors.shipped_priors` or ``inverse priors``.
"""

__all__: list[str] = []
