"""2-D and 8-D toy densities for squared circuits (Loconte et al., ICLR 2024,
Sec. 6: rings, moons, banana, cosine, funnel), plus a ring with dependent
extra dimensions where depth matters. Every generator returns an unscaled
``(n_samples, n_features)`` float array; standardise before fitting.

These are mixstat's own definitions in the spirit of the paper's data
(the exact generators of the reference code are not copied).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "make_rings",
    "make_moons_density",
    "make_banana",
    "make_cosine",
    "make_funnel",
    "make_rings_dependent",
    "make_circuit_dataset",
    "CIRCUIT_DATASETS",
]


def make_rings(n_samples=10000, radii=(1.0, 3.0, 5.0), noise=0.2, random_state=None):
    """Concentric rings ("mring"): a ring index uniform over ``radii``, an
    angle uniform on the circle, radius plus Gaussian ``noise``."""
    rng = check_random_state(random_state)
    r = np.asarray(radii, dtype=float)[rng.randint(len(radii), size=n_samples)]
    r = r + noise * rng.standard_normal(n_samples)
    t = rng.uniform(0, 2 * np.pi, n_samples)
    return np.c_[r * np.cos(t), r * np.sin(t)]


def make_moons_density(n_samples=10000, noise=0.1, random_state=None):
    """Two interleaving half circles with Gaussian noise (scikit-learn's
    ``make_moons`` without the labels)."""
    from sklearn.datasets import make_moons

    rng = check_random_state(random_state)
    X, _ = make_moons(n_samples, noise=noise, random_state=rng)
    return X


def make_banana(n_samples=10000, random_state=None):
    """Banana: :math:`x_1 \\sim N(0, 1)`, :math:`x_2 = x_1^2/2 + N(0, 0.35^2)`."""
    rng = check_random_state(random_state)
    x1 = rng.standard_normal(n_samples)
    x2 = 0.5 * x1**2 + 0.35 * rng.standard_normal(n_samples)
    return np.c_[x1, x2]


def make_cosine(n_samples=10000, random_state=None):
    """Cosine: :math:`x_1 \\sim U(-4, 4)`, :math:`x_2 = \\cos(2 x_1) + N(0, 0.2^2)`."""
    rng = check_random_state(random_state)
    x1 = rng.uniform(-4, 4, n_samples)
    x2 = np.cos(2 * x1) + 0.2 * rng.standard_normal(n_samples)
    return np.c_[x1, x2]


def make_funnel(n_samples=10000, random_state=None):
    """Neal's funnel in 2-D: :math:`v \\sim N(0, 1.5^2)`,
    :math:`x \\sim N(0, e^{v})`; columns ``(x, v)``."""
    rng = check_random_state(random_state)
    v = 1.5 * rng.standard_normal(n_samples)
    x = np.exp(v / 2) * rng.standard_normal(n_samples)
    return np.c_[x, v]


def make_rings_dependent(n_samples=10000, n_extra=6, random_state=None):
    """Rings (radii 1, 3, 5) plus ``n_extra`` dimensions that depend on the
    ring and on each other (D = 2 + n_extra):

    :math:`x_3 = \\rho + N(0, 0.2^2)` (the radius), then
    :math:`x_{j} = \\sin(1.5\\, x_{j-1}) + 0.5\\, x_{j-2} + N(0, 0.25^2)`.
    A chain of non-linear dependences that shallow mixtures capture poorly.
    """
    rng = check_random_state(random_state)
    X = make_rings(n_samples, random_state=rng)
    rho = np.hypot(X[:, 0], X[:, 1])
    cols = [X[:, 0], X[:, 1]]
    prev2, prev = X[:, 1], rho + 0.2 * rng.standard_normal(n_samples)
    if n_extra >= 1:
        cols.append(prev)
    for _ in range(n_extra - 1):
        nxt = np.sin(1.5 * prev) + 0.5 * prev2 + 0.25 * rng.standard_normal(n_samples)
        cols.append(nxt)
        prev2, prev = prev, nxt
    return np.column_stack(cols)


CIRCUIT_DATASETS = {
    "rings": make_rings,
    "moons": make_moons_density,
    "banana": make_banana,
    "cosine": make_cosine,
    "funnel": make_funnel,
    "rings8": make_rings_dependent,
}


def make_circuit_dataset(name, n_samples=10000, random_state=None, standardize=True):
    """One of :data:`CIRCUIT_DATASETS` by name, optionally standardised
    (zero mean, unit variance per column, as in the paper)."""
    if name not in CIRCUIT_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(CIRCUIT_DATASETS)}")
    X = CIRCUIT_DATASETS[name](n_samples=n_samples, random_state=random_state)
    if standardize:
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X
