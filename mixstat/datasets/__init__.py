"""Generators of the models' benchmark data (floor 3).

Each family's generators live in their own module (``_moe``, ``_mpe``,
``_circuits``, ``_mixer``) and are re-exported here.
"""

from . import _circuits, _latent_clusters, _mixer, _moe, _mpe
from ._circuits import *  # noqa: F401,F403
from ._latent_clusters import *  # noqa: F401,F403
from ._mixer import *  # noqa: F401,F403
from ._moe import *  # noqa: F401,F403
from ._mpe import *  # noqa: F401,F403

__all__ = [*_moe.__all__, *_mpe.__all__, *_circuits.__all__, *_mixer.__all__,
           *_latent_clusters.__all__]
