"""Mixture primitives (floor 1): pure functions on arrays, no state.

Written against the array API (NumPy, CuPy, torch, array-api-strict) except the
sequential solvers, which have a Numba kernel and a NumPy fallback and a
vectorised alternative (FISTA) for GPU arrays.
"""

from ._assignment import match_components, match_labels
from ._gaussian import gaussian_log_density, gaussian_product_log_integral, normal_log_density
from ._lasso import (
    EnetResult,
    enet_duality_gap,
    enet_lambda_max,
    soft_threshold,
    weighted_enet_cd,
    weighted_enet_fista,
)
from ._logsumexp import (
    log_softmax,
    logsumexp,
    responsibilities,
    signed_logsumexp,
    softmax,
    topk_gating,
)
from ._multinomial import (
    MultinomialResult,
    multinomial_objective,
    penalized_multinomial_update,
)

__all__ = [
    "EnetResult",
    "MultinomialResult",
    "enet_duality_gap",
    "enet_lambda_max",
    "gaussian_log_density",
    "gaussian_product_log_integral",
    "log_softmax",
    "logsumexp",
    "match_components",
    "match_labels",
    "multinomial_objective",
    "normal_log_density",
    "penalized_multinomial_update",
    "responsibilities",
    "signed_logsumexp",
    "soft_threshold",
    "softmax",
    "topk_gating",
    "weighted_enet_cd",
    "weighted_enet_fista",
]
