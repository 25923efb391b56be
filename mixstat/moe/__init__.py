"""Lasso-penalised Gaussian mixture-of-experts regression.

- :class:`GaussianMoERegressor`: softmax-gated mixture of linear Gaussian
  experts with l1 penalties on experts and gates, fitted by generalised EM.
- :func:`moe_path`: warm-started regularisation path from ``alpha_max``.
- :class:`GaussianMoERegressorCV`: selection of ``(alpha, alpha_gate,
  n_components)`` by BIC or held-out log-likelihood.
- :func:`design_from_formula` / ``GaussianMoERegressor.from_formula``:
  R-style formulas ``y ~ experts | gates`` (optional, needs formulaic).
- :func:`select_n_components`: number of experts by BIC / ICL / held-out
  log-likelihood / McLachlan's parametric bootstrap LRT.
- ``GaussianMoERegressor.inference`` / ``.summary`` / ``.refit``: standard
  errors (observed information, sandwich, bootstrap) of unpenalised fits.
"""

from ._formula import design_from_formula
from ._moe import GaussianMoERegressor
from ._inference import MoEInference
from ._path import GaussianMoERegressorCV, MoEPath, moe_path
from ._relaxed import relaxed_bic_path
from ._selection import ComponentSelection, select_n_components

__all__ = ["ComponentSelection", "GaussianMoERegressor", "GaussianMoERegressorCV",
           "MoEInference", "MoEPath", "design_from_formula", "moe_path", "relaxed_bic_path",
           "select_n_components"]
