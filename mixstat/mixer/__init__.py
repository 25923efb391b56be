"""MixER gating (Nzoyem, Barton & Deakin 2025): scikit-learn estimators.

:class:`MixERRegressor` is the tabular face (NumPy only); :class:`MixERODE`
trains a mixture of neural-ODE experts with PyTorch (imported inside ``fit``).
"""

from ._ode import MixERODE, routing_purity
from ._regressor import MixERRegressor

__all__ = ["MixERODE", "MixERRegressor", "routing_purity"]
