"""Array namespaces every primitive is tested on: NumPy, torch CPU tensors and
array-api-strict (the strictest reading of the standard)."""

import numpy as np
import pytest

from mixstat._backend import has_module, to_numpy

NAMESPACES = ["numpy", "torch", "array_api_strict"]


class Namespace:
    """Move NumPy test data onto one array library and back."""

    def __init__(self, name):
        self.name = name
        if name == "torch":
            import torch

            self.lib = torch
        elif name == "array_api_strict":
            import array_api_strict

            self.lib = array_api_strict
        else:
            self.lib = np

    def asarray(self, a):
        a = np.asarray(a)
        if self.name == "torch":
            return self.lib.asarray(a.copy())
        if self.name == "array_api_strict":
            return self.lib.asarray(a)
        return a

    def is_native(self, a):
        if self.name == "torch":
            return isinstance(a, self.lib.Tensor)
        if self.name == "array_api_strict":
            return type(a).__module__.startswith("array_api_strict")
        return isinstance(a, np.ndarray | np.generic)

    @staticmethod
    def to_numpy(a):
        return np.asarray(to_numpy(a))


@pytest.fixture(params=NAMESPACES)
def ns(request):
    if not has_module(request.param):
        pytest.skip(f"{request.param} is not installed")
    return Namespace(request.param)
