"""Tensorised squared circuits (NPC², Loconte et al., ICLR 2024) in PyTorch.

Region graphs (:func:`random_binary_tree`, :func:`linear_tree`,
:func:`quad_tree`), input layers (Gaussian, categorical, Bernstein, B-spline), CP and
Tucker sum-product layers evaluated in signed log-space, and
:class:`TensorizedCircuit` for the monotonic (+), squared monotonic (+²) and
signed squared (±²) models. The scikit-learn face is
:class:`mixstat.circuits.SquaredCircuitDensity`.
"""

from ._circuit import TensorizedCircuit
from ._inputs import BernsteinInput, BSplineInput, CategoricalInput, GaussianInput
from ._region_graph import RegionGraph, linear_tree, make_region_graph, quad_tree, random_binary_tree
from ._train import TrainResult, train_density

__all__ = [
    "BSplineInput",
    "BernsteinInput",
    "CategoricalInput",
    "GaussianInput",
    "RegionGraph",
    "TensorizedCircuit",
    "TrainResult",
    "linear_tree",
    "make_region_graph",
    "quad_tree",
    "random_binary_tree",
    "train_density",
]
