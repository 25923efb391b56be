"""Helpers shared by every family (floor 0): parallel loops, progress and
summary tables."""

from ._parallel import parallel_map
from ._summary import ModelSummary, format_pvalue, format_value

__all__ = ["ModelSummary", "format_pvalue", "format_value", "parallel_map"]
