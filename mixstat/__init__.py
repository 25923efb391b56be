"""mixstat: mixture models faithful to their papers.

Families (import them from their subpackages):

- :mod:`mixstat.moe` -- Lasso-penalised Gaussian mixture-of-experts regression.
- :mod:`mixstat.mpe` -- mixture proportion estimation beyond irreducibility.
- :mod:`mixstat.circuits` -- squared subtractive mixtures and circuits.
- :mod:`mixstat.mixer` -- MixER gating (K-means + least-squares top-1 gate).
- :mod:`mixstat.nn` -- PyTorch modules (needs torch).

``import mixstat`` imports none of torch, cupy, numba or statsmodels.
"""

__version__ = "0.1.0"

from ._backend import show_versions
from ._config import config_context, get_config, set_config

__all__ = ["__version__", "config_context", "get_config", "set_config", "show_versions"]
