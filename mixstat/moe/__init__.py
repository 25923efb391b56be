"""Lasso-penalised Gaussian mixture-of-experts regression.

- :class:`GaussianMoERegressor`: softmax-gated mixture of linear Gaussian
  experts with l1 penalties on experts and gates, fitted by generalised EM.
- :func:`moe_path`: warm-started regularisation path from ``alpha_max``.
- :class:`GaussianMoERegressorCV`: selection of ``(alpha, alpha_gate,
  n_components)`` by BIC or held-out log-likelihood.
"""

from ._moe import GaussianMoERegressor
from ._path import GaussianMoERegressorCV, MoEPath, moe_path

__all__ = ["GaussianMoERegressor", "GaussianMoERegressorCV", "MoEPath", "moe_path"]
