"""Shared test settings: one thread (fastest on the 2-core CI machine), float64 helpers."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def f64():
    return torch.float64


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
