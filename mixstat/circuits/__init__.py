"""Squared subtractive mixtures and circuits (Loconte et al., ICLR 2024).

- :class:`SquaredGaussianMixture`: shallow squared Gaussian mixture with signed
  weights, fitted by L-BFGS (NumPy; no torch needed).
- :class:`SquaredMixture1D`: squared mixtures of 1-D exponential, gamma or
  beta densities (closed-form Gram matrices).
- :class:`SquaredCircuitDensity`: deep tensorised squared circuits (NPC²)
  trained with Adam; imports :mod:`mixstat.nn` (torch) inside ``fit``.
"""

from ._circuit_density import SquaredCircuitDensity
from ._squared_1d import SquaredMixture1D
from ._squared_gmm import SquaredGaussianMixture, SquaredMixtureMarginal
from ._squared_gmm_inference import SquaredMixtureInference

__all__ = ["SquaredCircuitDensity", "SquaredGaussianMixture", "SquaredMixture1D",
           "SquaredMixtureInference", "SquaredMixtureMarginal"]
