"""Mixture proportion estimation beyond irreducibility.

We observe a sample of a component H (``y == 1``) and a sample of a mixture
F = kappa* H + (1 - kappa*) G (``y == 0``) and estimate kappa*.

- Base estimators (consistent for kappa(F|H), which equals kappa* only under
  irreducibility): :class:`KernelMeanMPE` (KM1/KM2), :class:`ROCMPE`,
  :class:`BestBinMPE`, :class:`ElkanNotoMPE`, :class:`DEDPULMPE`,
  :class:`TIcEMPE`.
- Meta-estimators: :class:`SubsamplingMPE` (SuMPE, Zhu et al. ICML 2023),
  :class:`RegroupingMPE` (ReCPE, Yao et al. ICLR 2022).
- :class:`MedianMPE`: the median of KM1, KM2 and BBE (the default of
  :func:`mixture_proportion`).
- :func:`mixture_proportion`: one call for notebooks.
"""

from ._base import BaseMPE, cross_fit_scores
from ._classifier import (
    BestBinMPE,
    DEDPULMPE,
    ElkanNotoMPE,
    ROCMPE,
    TIcEMPE,
    bbe_proportion,
    dedpul_proportion,
    roc_proportion,
)
from ._kernel_mean import KernelMeanMPE, simplex_nearest_point
from ._meta import (
    MedianMPE,
    RegroupingMPE,
    SubsamplingMPE,
    make_mpe_estimator,
    mixture_proportion,
)

__all__ = [
    "BaseMPE",
    "BestBinMPE",
    "DEDPULMPE",
    "ElkanNotoMPE",
    "KernelMeanMPE",
    "MedianMPE",
    "ROCMPE",
    "RegroupingMPE",
    "SubsamplingMPE",
    "TIcEMPE",
    "bbe_proportion",
    "cross_fit_scores",
    "dedpul_proportion",
    "make_mpe_estimator",
    "mixture_proportion",
    "roc_proportion",
    "simplex_nearest_point",
]
