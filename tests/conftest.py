import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("MPLBACKEND", "Agg")

# JIT compilation makes first calls slow: no deadline; a fixed seed for CI.
settings.register_profile(
    "mixstat",
    deadline=None,
    derandomize=True,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "mixstat"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
