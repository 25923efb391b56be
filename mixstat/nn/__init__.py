"""PyTorch modules built from mixstat's primitives (floor 2). Needs torch."""

from .._backend import has_module

if not has_module("torch"):  # pragma: no cover - exercised without torch
    raise ImportError("mixstat.nn needs PyTorch: pip install 'mixstat[torch]'")

__all__: list[str] = []
