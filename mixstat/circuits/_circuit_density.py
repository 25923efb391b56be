"""scikit-learn face of the deep tensorised squared circuits (NPC²)."""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from .._backend import has_module
from ..utils._summary import ModelSummary, SummaryMixin
from .._validation import (
    Interval,
    StrOptions,
    _fit_context,
    check_finite,
    check_random_state,
    validate_data,
)

__all__ = ["SquaredCircuitDensity", "CircuitMarginal"]


def _torch_dtype(name):
    import torch

    return {"float64": torch.float64, "float32": torch.float32}[name]


class SquaredCircuitDensity(SummaryMixin, DensityMixin, BaseEstimator):
    r"""Density estimation with a deep squared tensorised circuit (NPC²).

    A circuit :math:`c(x)` built on a region-graph tree (inputs: :math:`K`
    univariate densities per variable; per region a product of its children
    followed by a :math:`K\times K` sum layer) is squared and normalised
    (Loconte et al., "Subtractive Mixture Models via Squaring: Representation
    and Learning", ICLR 2024):

    .. math:: p(x) = \sum_{r=1}^{R} \pi_r \frac{c_r(x)^2}{Z_r}, \qquad
              Z_r = \int c_r(x)^2 dx ,

    with :math:`Z_r` computed exactly by propagating :math:`K\times K`
    matrices of unit pairs, :math:`A\mapsto WAW^\top`. ``weights='signed'``
    gives the subtractive NPC² (±²), ``weights='positive'`` the squared
    monotonic circuit (+²), and ``squared=False`` with positive weights the
    monotonic circuit (+), all on the same architecture. Trained by maximum
    likelihood with Adam in float64 (default) and signed log-space.

    Continuous data are standardised for 'gaussian' inputs (the density is
    reported in the original units) and mapped to [0, 1] for 'bernstein'
    and 'bspline' inputs (a density supported on the training range padded
    by 5% on each side);
    'categorical' inputs take integers ``0 .. n_categories-1`` per feature.

    Parameters
    ----------
    region_graph : {'binary-tree', 'linear-tree', 'quad-tree'} or RegionGraph
    n_units : int, default=16
    n_replicas : int, default=1
        Positive mixture of this many squared circuits on independently drawn
        trees.
    inputs : {'gaussian', 'categorical', 'bernstein', 'bspline'}, default='gaussian'
        Univariate input units: Gaussians, categoricals, Bernstein polynomials
        or B-splines (both for bounded data; exact integrals of products).
    layer : {'cp', 'tucker'}, default='cp'
    weights : {'signed', 'positive'}, default='signed'
    squared : bool, default=True
    max_epochs : int, default=100
    batch_size : int, default=256
    learning_rate : float, default=5e-3
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the data and stop when the
        validation log-likelihood has not improved by a relative ``tol`` for
        ``n_iter_no_change`` epochs; the best model is kept.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-3
    dtype : {'float64', 'float32'}, default='float64'
    device : str, default='cpu'
    image_shape : tuple, optional
        (height, width) for ``region_graph='quad-tree'``.
    degree : int or None, default=None
        Degree of Bernstein (None: 12) or B-spline (None: 3, cubic) inputs.
    n_knots : int, default=32
        Number of uniform knot intervals of B-spline inputs on the padded
        data range.
    max_scale : float or None, default=2.0
        Upper bound on the standard deviations of 'gaussian' inputs, in
        standard deviations of the training data (per feature); None leaves
        them unbounded. The bound (a sigmoid parameterisation, as cirkit's)
        made training of deep signed circuits smoother and better in our
        benchmarks (docs/circuits.md).
    init : {'kmeans', 'data', 'random'}, default='kmeans'
        Start of the 'gaussian' input means. 'kmeans' puts unit :math:`k` of
        every leaf at the coordinates of centre :math:`k` of k-means on the
        (standardised) training rows (scikit-learn's ``KMeans``, one run,
        on at most 100,000 of them); 'data' at those of the same randomly
        drawn training point (as a Gaussian mixture started from random
        data points); 'random' draws them from :math:`N(0, 1)` (cirkit's
        default). Scales, other inputs and all weights are drawn at random
        either way. Against cirkit (docs/circuits.md) 'kmeans' gave the best
        test likelihoods of the three at D = 8 for all three models.
    random_state : int, RandomState or None
    verbose : int, default=0
        Progress bar over epochs (tqdm) when > 0.

    Attributes
    ----------
    module_ : mixstat.nn.circuits.TensorizedCircuit
    n_iter_ : int, epochs run
    converged_ : bool, early stopping fired
    diverged_ : bool, training met a non-finite loss and kept its best model
    train_curve_, valid_curve_ : list of float, mean log-likelihoods per point
        and epoch, on the internally rescaled data ``(X - shift_) / scale_``
        (add ``-sum(log(scale_))`` for the data's scale; ``summary()`` does)
    train_score_ : float, mean log-likelihood per point of the rows passed
        to ``fit``, in the data's units (equal to ``score(X)``)
    epoch_times_ : list of float, seconds per epoch
    n_categories_ : ndarray, categorical domain sizes
    """

    _parameter_constraints = {
        "region_graph": [StrOptions({"binary-tree", "linear-tree", "quad-tree"}), object],
        "n_units": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_replicas": [Interval(numbers.Integral, 1, None, closed="left")],
        "inputs": [StrOptions({"gaussian", "categorical", "bernstein", "bspline"})],
        "layer": [StrOptions({"cp", "tucker"})],
        "weights": [StrOptions({"signed", "positive"})],
        "squared": ["boolean"],
        "max_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "dtype": [StrOptions({"float64", "float32"})],
        "device": [str],
        "image_shape": [tuple, None],
        "degree": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_knots": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_scale": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "init": [StrOptions({"data", "kmeans", "random"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        region_graph="binary-tree",
        n_units=16,
        n_replicas=1,
        inputs="gaussian",
        layer="cp",
        weights="signed",
        squared=True,
        max_epochs=100,
        batch_size=256,
        learning_rate=5e-3,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-3,
        dtype="float64",
        device="cpu",
        image_shape=None,
        degree=None,
        n_knots=32,
        max_scale=2.0,
        init="kmeans",
        random_state=None,
        verbose=0,
    ):
        self.region_graph = region_graph
        self.n_units = n_units
        self.n_replicas = n_replicas
        self.inputs = inputs
        self.layer = layer
        self.weights = weights
        self.squared = squared
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.dtype = dtype
        self.device = device
        self.image_shape = image_shape
        self.degree = degree
        self.n_knots = n_knots
        self.max_scale = max_scale
        self.init = init
        self.random_state = random_state
        self.verbose = verbose

    # --------------------------------------------------------- transforms
    def _transform(self, X):
        if self.inputs == "gaussian":
            return (X - self.shift_) / self.scale_
        if self.inputs in ("bernstein", "bspline"):
            return (X - self.shift_) / self.scale_
        return X

    def _check_categorical(self, X, fitting):
        if not np.all(np.equal(np.mod(X, 1), 0)) or np.any(X < 0):
            raise ValueError("categorical inputs must be non-negative integers (category codes 0, 1, ...)")
        if not fitting:
            bad = X >= self.n_categories_[None, :]
            if bad.any():
                j = int(np.argwhere(bad)[0, 1])
                raise ValueError(
                    f"feature {j} has category {int(X[bad][0])} outside the domain "
                    f"0..{int(self.n_categories_[j]) - 1} seen in fit"
                )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the circuit by maximum likelihood (Adam, mini-batches).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        if not has_module("torch"):
            raise ImportError("SquaredCircuitDensity needs PyTorch: pip install 'mixstat[torch]'")
        import torch

        from ..nn.circuits import TensorizedCircuit, make_region_graph, train_density

        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        X = np.asarray(X, dtype=np.float64)
        check_finite(X)
        if self.weights == "signed" and not self.squared:
            raise ValueError("weights='signed' needs squared=True (a signed circuit is not a density)")
        n, d = X.shape
        rng = check_random_state(self.random_state)
        if self.inputs == "gaussian":
            self.shift_ = X.mean(axis=0)
            sd = X.std(axis=0)
            self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        elif self.inputs in ("bernstein", "bspline"):
            lo, hi = X.min(axis=0), X.max(axis=0)
            span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
            self.shift_ = lo - 0.05 * span
            self.scale_ = 1.1 * span
        else:
            self._check_categorical(X, True)
            self.n_categories_ = X.max(axis=0).astype(int) + 1
        Z = self._transform(X)
        tdtype = _torch_dtype(self.dtype)
        gen = torch.Generator().manual_seed(int(rng.randint(2**31 - 1)))
        graphs = [
            make_region_graph(self.region_graph, d, int(rng.randint(2**31 - 1)), self.image_shape)
            for _ in range(self.n_replicas)
        ]
        module = TensorizedCircuit(
            graphs,
            n_units=self.n_units,
            inputs=self.inputs,
            layer=self.layer,
            weights=self.weights,
            squared=self.squared,
            n_categories=getattr(self, "n_categories_", None),
            degree=self.degree,
            n_knots=self.n_knots,
            max_scale=self.max_scale,
            dtype=tdtype,
            generator=gen,
        ).to(self.device)
        idx = rng.permutation(n)
        n_val = int(round(self.validation_fraction * n)) if self.early_stopping else 0
        n_val = min(n_val, n - 1)
        Zt = torch.as_tensor(Z[idx], dtype=tdtype, device=self.device)
        X_val = Zt[:n_val] if n_val > 0 else None
        X_tr = Zt[n_val:]
        if self.init in ("data", "kmeans"):
            module.init_from_data(X_tr, generator=gen, method="points" if self.init == "data" else "kmeans")
        t0 = time.perf_counter()
        res = train_density(
            module, X_tr, X_val,
            max_epochs=self.max_epochs, batch_size=self.batch_size,
            learning_rate=self.learning_rate, early_stopping=self.early_stopping,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol,
            rng=np.random.default_rng(rng.randint(2**31 - 1)), verbose=bool(self.verbose),
        )
        self.fit_time_ = time.perf_counter() - t0
        self.module_ = module
        # the fitted model's own mean log-likelihood of the rows passed to fit,
        # in the data's units (as score(X)); the curves stay on the internal scale
        ll = self._eval(module, Z).astype(np.float64) - self._log_jacobian()
        self.train_score_ = float(np.mean(ll))
        self.n_iter_ = res.n_epochs
        self.converged_ = res.converged
        self.diverged_ = res.diverged
        self.train_curve_ = res.train_curve
        self.valid_curve_ = res.valid_curve
        self.epoch_times_ = res.epoch_times
        self.backend_ = "torch"
        if res.diverged:
            warnings.warn(res.message, ConvergenceWarning, stacklevel=2)
        elif self.early_stopping and not res.converged and self.max_epochs > 0:
            warnings.warn(
                f"early stopping did not fire in max_epochs={self.max_epochs}; "
                "increase max_epochs for a converged model.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    # ------------------------------------------------------------ queries
    def _check_X(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        X = np.asarray(X, dtype=np.float64)
        check_finite(X)
        if self.inputs == "categorical":
            self._check_categorical(X, False)
        return X

    def _log_jacobian(self, features=None):
        if self.inputs == "categorical":
            return 0.0
        s = self.scale_ if features is None else self.scale_[features]
        return float(np.sum(np.log(s)))

    def _eval(self, fn, Z, batch=4096):
        import torch

        p = next(self.module_.parameters())
        out = []
        with torch.no_grad():
            for i in range(0, Z.shape[0], batch):
                zt = torch.as_tensor(Z[i : i + batch], dtype=p.dtype, device=p.device)
                out.append(fn(zt).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def score_samples(self, X):
        """Log-density of each sample (in the units of the training data)."""
        X = self._check_X(X)
        return self._eval(self.module_, self._transform(X)).astype(np.float64) - self._log_jacobian()

    _summary_fitted_attribute = "module_"

    def _summary(self):
        kind = {("signed", True): "+-^2 (signed, squared)", ("positive", True): "+^2 (squared)",
                ("positive", False): "+ (monotonic)", ("signed", False): "signed, not squared"}
        # the curves are recorded on the internal scale z = (x - shift_) / scale_;
        # the change of variables x -> z adds sum(log(scale_)) per point, so the
        # data-scale values are curve - sum(log(scale_)) (0 for categorical inputs)
        jac = self._log_jacobian()
        valid = [v - jac for v in (self.valid_curve_ or []) if np.isfinite(v)]
        info = {
            "Model": "SquaredCircuitDensity",
            "Circuit": kind.get((self.weights, bool(self.squared)), f"{self.weights}"),
            "Region graph": self.region_graph,
            "Layer": self.layer,
            "Inputs": self.inputs,
            "Units": self.n_units,
            "Replicas": self.n_replicas,
            "Features": self.n_features_in_,
            "Parameters": int(sum(p.numel() for p in self.module_.parameters())),
            "Epochs": self.n_iter_,
            "Converged": bool(self.converged_),
            "Diverged": bool(self.diverged_),
            "Mean log-lik (train)": float(self.train_score_),
            "Best valid log-lik": max(valid) if valid else float("nan"),
            "Log-lik scale": "data (nats/point)",
            "Fit time (s)": float(self.fit_time_),
            "Device": str(self.device),
            "Backend": self.backend_,
        }
        rows, vals = [], []
        for e, tr in enumerate(self.train_curve_):
            va = self.valid_curve_[e] if e < len(self.valid_curve_) else float("nan")
            rows.append(f"epoch {e + 1}")
            vals.append([float(tr) - jac, float(va) - jac])
        step = max(1, len(rows) // 10)  # at most about ten rows
        keep = sorted(set(range(0, len(rows), step)) | {len(rows) - 1}) if rows else []
        title = "Training curve (mean log-likelihood per point, data scale, nats)"
        tables = [(title, [rows[i] for i in keep], ["train", "valid"],
                   [vals[i] for i in keep])] if keep else []
        notes = [
            "Squared tensorised circuit (NPC^2, Loconte et al., ICLR 2024).",
            "All log-likelihoods are per point, in nats, on the data's scale "
            "(as score_samples): 'Mean log-lik (train)' is the fitted model on "
            "the rows passed to fit; the training curve (train and validation "
            "splits, the train column averaged over the epoch's mini-batches) "
            f"is train_curve_ / valid_curve_ minus sum(log(scale_)) = {jac:.4f}, "
            "since those attributes are recorded on the internally rescaled "
            "data (X - shift_) / scale_.",
        ]
        return ModelSummary("Squared circuit density", info, tables, notes)

    def score(self, X, y=None):
        """Mean log-likelihood."""
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None):
        """Exact samples, autoregressively (inverse CDF by bisection for
        continuous inputs, enumeration for categorical ones).

        Returns
        -------
        X : ndarray (n_samples, n_features)
        """
        import torch

        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        gen = torch.Generator().manual_seed(int(rng.randint(2**31 - 1)))
        Z = self.module_.sample(int(n_samples), generator=gen).cpu().numpy()
        if self.inputs == "categorical":
            return Z.astype(np.int64)
        return Z * self.scale_ + self.shift_

    def marginal(self, features):
        """Marginal density of ``features`` (through the squared circuit).

        Returns
        -------
        CircuitMarginal
        """
        check_is_fitted(self)
        d = self.n_features_in_
        feats = np.atleast_1d(np.asarray(features))
        if feats.dtype == bool:
            feats = np.flatnonzero(feats)
        if feats.size == 0 or np.any(feats < 0) or np.any(feats >= d) or len(set(feats.tolist())) != feats.size:
            raise ValueError(f"features must be distinct indices in [0, {d}), got {features!r}")
        return CircuitMarginal(self, feats.astype(int))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class CircuitMarginal:
    """Marginal of a fitted :class:`SquaredCircuitDensity` over ``features``."""

    def __init__(self, model, features):
        self.model = model
        self.features = features

    def score_samples(self, X):
        """Marginal log-density of ``X`` (n_samples, len(features))."""
        import torch

        m = self.model
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ValueError(f"X must have {len(self.features)} columns (the marginal's features), got shape {X.shape}")
        check_finite(X)
        full = np.zeros((X.shape[0], m.n_features_in_))
        full[:, self.features] = X
        if m.inputs == "categorical":
            m._check_categorical(full, False)
        else:
            full = m._transform(full)
        obs = torch.zeros(m.n_features_in_, dtype=torch.bool)
        obs[torch.as_tensor(self.features)] = True
        lp = m._eval(lambda z: m.module_.log_marginal(z, obs), full)
        return lp - m._log_jacobian(self.features)

    def score(self, X):
        """Mean marginal log-likelihood."""
        return float(np.mean(self.score_samples(X)))
