"""Shared test settings: one thread (fastest on the 2-core CI machine), no hub access."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
