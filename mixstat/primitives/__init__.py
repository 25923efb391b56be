"""Mixture primitives (floor 1): pure functions on arrays, no state.

Written against the array API (NumPy, CuPy, torch, array-api-strict) except the
sequential solvers, which have a Numba kernel and a NumPy fallback and a
vectorised alternative (FISTA) for GPU arrays.
"""

from ._assignment import match_components, match_labels
from ._bootstrap import bootstrap_replicates, percentile_interval, stratified_resample_indices
from ._inference import InferenceResult, invert_information, wald_inference
from ._kmeans import (
    KMeansGateResult,
    KMeansResult,
    kmeans_lstsq_gate,
    lstsq_gate_logits,
    match_clusters_to_experts,
    warm_kmeans,
)
from ._signed_matmul import signed_log_matmul
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
    "KMeansGateResult",
    "KMeansResult",
    "bootstrap_replicates",
    "kmeans_lstsq_gate",
    "lstsq_gate_logits",
    "match_clusters_to_experts",
    "percentile_interval",
    "signed_log_matmul",
    "stratified_resample_indices",
    "wald_inference",
    "invert_information",
    "InferenceResult",
    "warm_kmeans",
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
