"""Generators of the models' benchmark data (floor 3).

Each family's generators live in their own module and are re-exported here.
"""

from ._moe import *  # noqa: F401,F403
from ._moe import __all__ as _moe_all

__all__ = [*_moe_all]
