"""Helpers shared by every family (floor 0): parallel loops and progress."""

from ._parallel import parallel_map

__all__ = ["parallel_map"]
