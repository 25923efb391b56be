"""PyTorch modules built from mixstat's primitives (floor 2). Needs torch.

Submodules: ``gating`` (routers, load-balancing losses), ``moe`` (MoE layer),
``sparsemixer`` (SparseMixer gradient estimators), ``mixture_of_tokens``,
``diffusion`` (immiscible noise assignment, GMFlow, Score-of-Mixture),
``mixer`` (MixER layer and ODE experts), ``circuits`` (tensorised squared
circuits), ``conversion`` (Dense <-> MoE), ``data_mixing`` (Aioli), ``denoiser_mixture``
(Collaborative Diffusion / MixerMDM), ``expert_parallel`` (experts across ranks),
``teachers`` (tiny class-conditional diffusion teachers and samplers), ``distillation``
(SiD, multi-student, multi-CFG), ``semantic_mixing`` (MagicMix).
"""

from .._backend import has_module

if not has_module("torch"):  # pragma: no cover - exercised without torch
    raise ImportError("mixstat.nn needs PyTorch: pip install 'mixstat[torch]'")

from . import (  # noqa: E402
    adapters,
    circuits,
    conversion,
    data_mixing,
    denoiser_mixture,
    diffusion,
    distillation,
    expert_parallel,
    gating,
    mixer,
    mixture_of_states,
    mixture_of_tokens,
    moe,
    semantic_mixing,
    sparsemixer,
    teachers,
    transfusion,
)
from .adapters import *  # noqa: E402,F401,F403
from .circuits import *  # noqa: E402,F401,F403
from .conversion import *  # noqa: E402,F401,F403
from .data_mixing import *  # noqa: E402,F401,F403
from .denoiser_mixture import *  # noqa: E402,F401,F403
from .diffusion import *  # noqa: E402,F401,F403
from .distillation import *  # noqa: E402,F401,F403
from .expert_parallel import *  # noqa: E402,F401,F403
from .gating import *  # noqa: E402,F401,F403
from .mixer import *  # noqa: E402,F401,F403
from .mixture_of_states import *  # noqa: E402,F401,F403
from .mixture_of_tokens import *  # noqa: E402,F401,F403
from .moe import *  # noqa: E402,F401,F403
from .semantic_mixing import *  # noqa: E402,F401,F403
from .sparsemixer import *  # noqa: E402,F401,F403
from .teachers import *  # noqa: E402,F401,F403
from .transfusion import *  # noqa: E402,F401,F403

__all__ = [
    *adapters.__all__,
    *circuits.__all__,
    *conversion.__all__,
    *data_mixing.__all__,
    *denoiser_mixture.__all__,
    *diffusion.__all__,
    *expert_parallel.__all__,
    *gating.__all__,
    *mixer.__all__,
    *mixture_of_states.__all__,
    *mixture_of_tokens.__all__,
    *moe.__all__,
    *sparsemixer.__all__,
    *transfusion.__all__,
    *distillation.__all__,
    *semantic_mixing.__all__,
    *teachers.__all__,
]
