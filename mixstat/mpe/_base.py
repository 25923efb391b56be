"""Shared machinery of the MPE estimators: the ``fit(X, y)`` contract, the
bootstrap interval, cross-fitted classifier scores.

Convention (positive-unlabeled): ``y == 1`` marks the sample of the
component ``H``, ``y == 0`` the sample of the mixture
``F = kappa* H + (1 - kappa*) G``. Every estimator stores ``proportion_``,
an estimate of a mixture proportion in ``[0, 1]``.
"""

from __future__ import annotations

import warnings

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import ClassifierTags

from .._backend import _namespace_name, resolve_backend, to_numpy
from .._config import config_context
from .._validation import (
    Interval,
    StrOptions,
    _fit_context,
    check_random_state,
    validate_data,
)
from ..primitives._bootstrap import bootstrap_replicates, percentile_interval
from ..utils._summary import ModelSummary, SummaryMixin

MIN_SAMPLES_PER_CLASS = 10


def split_samples(X, y):
    """Check the PU labels and return ``(X_component, X_mixture)``.

    Raises ``ValueError`` when y is not binary in {0, 1}, a class is absent,
    or a class has fewer than ``MIN_SAMPLES_PER_CLASS`` points.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}.")
    if y.dtype.kind == "b":
        y = y.astype(int)
    if y.dtype.kind not in "iuf":
        raise ValueError(
            "Unknown label type: y must be binary, 1 for the component sample (H) "
            f"and 0 for the mixture sample (F); got dtype {y.dtype}."
        )
    vals = np.unique(y)
    if not np.isin(vals, [0, 1]).all():
        raise ValueError(
            "y must be binary: 1 for the component sample (H), 0 for the mixture "
            f"sample (F); got values {vals[:10].tolist()}."
        )
    n_h, n_f = int((y == 1).sum()), int((y == 0).sum())
    if n_h == 0 or n_f == 0:
        missing = "component (y=1)" if n_h == 0 else "mixture (y=0)"
        raise ValueError(f"y has no {missing} sample: both samples are needed.")
    if min(n_h, n_f) < MIN_SAMPLES_PER_CLASS:
        raise ValueError(
            f"Too few samples: the component sample has {n_h} and the mixture sample "
            f"{n_f} points; at least {MIN_SAMPLES_PER_CLASS} of each are needed."
        )
    return X[y == 1], X[y == 0]


def stack(X_component, X_mixture):
    """``(X, y)`` in the PU convention from the two samples."""
    X = np.vstack([X_component, X_mixture])
    y = np.r_[np.ones(len(X_component), dtype=int), np.zeros(len(X_mixture), dtype=int)]
    return X, y


def default_classifier(n_features=1):
    """Default classifier: logistic regression on standardised features,
    with degree-2 features when ``n_features <= 10`` (exact for the log
    density ratio of two Gaussians), linear above (cheap in high dimension)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    if n_features <= 10:
        return make_pipeline(
            StandardScaler(), PolynomialFeatures(2), StandardScaler(),
            LogisticRegression(C=1.0, max_iter=1000),
        )
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))


def positive_proba(clf, X):
    """Column of ``predict_proba`` for label 1 (or ``True``); else the last one."""
    p = np.asarray(clf.predict_proba(X))
    classes = list(getattr(clf, "classes_", []))
    for lab in (1, True, "1"):
        if lab in classes:
            return p[:, classes.index(lab)]
    return p[:, -1]


def cross_fit_scores(classifier, X_component, X_mixture, n_folds=5, random_state=None):
    """Out-of-fold scores ``P(component sample | x)``: every point is scored by
    a classifier that was not trained on it.

    Returns ``(s_component, s_mixture)``.
    """
    X, y = stack(X_component, X_mixture)
    clf0 = default_classifier(X.shape[1]) if classifier is None else classifier
    n_folds = int(min(n_folds, np.bincount(y).min()))
    if n_folds < 2:
        raise ValueError("cross-fitting needs at least 2 points in each sample")
    seed = check_random_state(random_state).randint(0, 2**31 - 1)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    s = np.empty(len(y))
    for tr, te in skf.split(X, y):
        clf = clone(clf0)
        if "random_state" in clf.get_params():
            try:
                clf.set_params(random_state=seed)
            except ValueError:
                pass
        clf.fit(X[tr], y[tr])
        s[te] = positive_proba(clf, X[te])
    m = len(X_component)
    return s[:m], s[m:]


class BaseMPE(SummaryMixin, BaseEstimator):
    """Base class of the mixture proportion estimators.

    Subclasses implement ``_estimate(X_component, X_mixture, rng) -> float``
    (they may set further fitted attributes on ``self``). ``fit`` validates,
    calls it, clips to ``[0, 1]`` and, when ``n_bootstrap > 0``, computes a
    percentile bootstrap interval by resampling each sample with replacement
    (sizes kept) and refitting a clone.
    """

    #: marker that meta-estimators check (``SubsamplingMPE``, ``RegroupingMPE``)
    _is_mpe_estimator = True
    _summary_fitted_attribute = "proportion_"
    #: ``(label, attribute)`` pairs of estimator-specific figures for ``summary()``
    _summary_fields: tuple = ()
    #: what the estimate targets, printed as the first note of ``summary()``
    _summary_target = (
        "The estimate targets kappa(F|H), the largest proportion of H that F contains; "
        "it equals the true proportion kappa* only when F's other component G is "
        "irreducible with respect to H (G contains no part of H)."
    )

    _parameter_constraints: dict = {
        "n_bootstrap": [Interval(Integral, 0, None, closed="left")],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "n_jobs": [None, Integral],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "backend": [None, StrOptions({"auto", "numpy", "numba", "torch", "cupy"})],
    }
    #: the backends the ``backend`` parameter may resolve to
    _backends = ("numpy", "numba", "torch", "cupy")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        # y is a binary sample indicator: the checks then generate binary targets
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags

    def _estimate(self, X_component, X_mixture, rng):  # pragma: no cover
        raise NotImplementedError

    def _resolve_backend(self, X):
        """Resolve ``backend`` (the parameter, then ``config_context``, then
        the input's namespace, then Numba, then NumPy) and keep it for fit."""
        backend = resolve_backend(getattr(self, "backend", None), X, allowed=self._backends)
        self._fit_backend = backend
        return backend

    def _backend_context(self):
        """``config_context`` that hands the resolved backend (and torch
        device) to the estimators fitted inside this one (a meta-estimator's
        base estimator, bootstrap refits)."""
        backend = self.__dict__.get("_fit_backend")
        if backend is None:
            name = getattr(self, "backend_", None)
            device = getattr(self, "_device", None)
        else:
            name = backend.name
            device = None if backend.device is None else str(backend.device)
        if name is None:
            return config_context()
        return config_context(backend=name, device=device if name == "torch" else None)

    def _validate(self, X, y):
        if "backend" in self.get_params(deep=False):
            backend = self._resolve_backend(X)
            self._device = None if backend.device is None else str(backend.device)
            # the scikit-learn classifiers and the score rules run on the host:
            # device arrays (torch, CuPy) are copied there
            X = to_numpy(X) if _namespace_name((X,)) else X
            y = to_numpy(y) if _namespace_name((y,)) else y
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2,
                             y_numeric=False)
        return split_samples(X, y)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Estimate the proportion of the component in the mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Both samples stacked.
        y : array-like of shape (n_samples,)
            1 for points of the component sample H, 0 for points of the
            mixture sample F.

        Returns
        -------
        self
        """
        X_h, X_f = self._validate(X, y)
        rng = check_random_state(self.random_state)
        kappa = float(self._estimate(X_h, X_f, rng))
        backend = self.__dict__.pop("_fit_backend", None)
        if backend is not None:
            self.backend_ = backend.name
        self.proportion_ = float(np.clip(kappa, 0.0, 1.0)) if np.isfinite(kappa) else np.nan
        self.n_component_, self.n_mixture_ = len(X_h), len(X_f)
        if getattr(self, "n_bootstrap", 0):
            self._bootstrap(X_h, X_f, rng)
        return self

    def _summary(self):
        name = type(self).__name__
        reps = getattr(self, "bootstrap_proportions_", None)
        interval = getattr(self, "proportion_interval_", None)
        info = {
            "Estimator": name,
            "Proportion": self.proportion_,
            "Component sample (H, y=1)": self.n_component_,
            "Mixture sample (F, y=0)": self.n_mixture_,
        }
        if hasattr(self, "backend_"):
            info["Backend"] = self.backend_
        row = [self.proportion_, "", ""]
        cols = ["estimate", "lower", "upper"]
        notes = [self._summary_target]
        if reps is not None and interval is not None:
            reps = np.asarray(reps, dtype=float)
            n_failed = int(np.sum(~np.isfinite(reps)))
            info["Bootstrap replicates"] = int(reps.size)
            info["Failed replicates"] = n_failed
            row = [self.proportion_, float(interval[0]), float(interval[1])]
            level = float(self.confidence)
            cols = ["estimate", f"[{(1 - level) / 2:.3g}", f"{1 - (1 - level) / 2:.3g}]"]
            notes.append(
                f"Percentile bootstrap interval at level {level:g} from {reps.size - n_failed} "
                f"replicates (each sample resampled with replacement, sizes kept); "
                f"{n_failed} replicate(s) failed and were left out.")
        else:
            notes.append("No interval: fit with n_bootstrap > 0 for a bootstrap interval.")
        extra = [(label, _cell(getattr(self, attr))) for label, attr in self._summary_fields
                 if getattr(self, attr, None) is not None]
        tables = [("Mixture proportion", ["kappa"], cols, [row])]
        if extra:
            tables.append(("Estimator details", [lab for lab, _ in extra], ["value"],
                           [[v] for _, v in extra]))
        return ModelSummary(f"{name}: mixture proportion estimate", info, tables, notes)

    def _bootstrap(self, X_h, X_f, rng):
        X, y = stack(X_h, X_f)
        params = {"n_bootstrap": 0, "verbose": 0}
        if "n_jobs" in self.get_params():
            params["n_jobs"] = None
        template = _clone_keep_fitted(self).set_params(**params)
        stat = _BootstrapStatistic(template, X, y)
        with self._backend_context():
            reps = bootstrap_replicates(stat, y, self.n_bootstrap, random_state=rng,
                                        n_jobs=self.n_jobs, verbose=self.verbose,
                                        desc=type(self).__name__)
        self.bootstrap_proportions_ = reps
        self.n_bootstrap_failed_ = int(np.sum(~np.isfinite(reps)))
        if self.n_bootstrap_failed_:
            warnings.warn(
                f"{self.n_bootstrap_failed_} of {len(reps)} bootstrap replicates failed "
                "(the estimator raised on the resample); the interval uses the others.",
                UserWarning, stacklevel=3)
        self.proportion_interval_ = percentile_interval(reps, self.confidence)


def _cell(v):
    """A table cell: sequences (an interval, say) become one string."""
    if isinstance(v, tuple | list | np.ndarray):
        from ..utils._summary import format_value

        return "(" + ", ".join(format_value(x) for x in np.ravel(np.asarray(v, dtype=object))) + ")"
    return v


def _clone_keep_fitted(est):
    """``clone(est)``, but parameters that are *fitted* estimators (a fitted
    classifier given as the acceptance function, say) are kept as they are:
    cloning would return them unfitted."""
    out = clone(est)
    keep = {}
    for name, value in est.get_params(deep=False).items():
        if hasattr(value, "fit") and hasattr(value, "get_params"):
            try:
                check_is_fitted(value)
            except (NotFittedError, TypeError):
                continue
            keep[name] = value
    return out.set_params(**keep) if keep else out


class _BootstrapStatistic:
    """Picklable ``(indices, seed) -> proportion`` for one bootstrap refit."""

    def __init__(self, template, X, y):
        self.template, self.X, self.y = template, X, y

    def __call__(self, idx, seed):
        est = _clone_keep_fitted(self.template)
        if "random_state" in est.get_params():
            est.set_params(random_state=seed)
        Xb, yb = self.X[idx], self.y[idx]
        try:
            k = est._estimate(Xb[yb == 1], Xb[yb == 0], check_random_state(seed))
        except (ValueError, np.linalg.LinAlgError):
            return np.nan
        return float(np.clip(k, 0.0, 1.0))


def check_mpe_estimator(est, name="base_estimator"):
    """Raise ``ValueError`` unless ``est`` is an (unfitted) MPE estimator."""
    if not getattr(est, "_is_mpe_estimator", False) or not hasattr(est, "fit"):
        raise ValueError(
            f"{name} must be a mixstat MPE estimator (KernelMeanMPE, ROCMPE, "
            f"BestBinMPE, ElkanNotoMPE, DEDPULMPE, TIcEMPE, ...); got {type(est).__name__}."
        )
    return est


BACKEND_DOC = """
    backend : {'auto', 'numpy', 'numba', 'torch', 'cupy'} or None, default=None
        Resolved in ``fit`` by :func:`mixstat._backend.resolve_backend` (the
        parameter, then ``mixstat.config_context``, then the input's
        namespace, then Numba when installed, then NumPy) and recorded in
        ``backend_``. ``X`` and ``y`` may be torch tensors or CuPy arrays:
        they are copied to the host, because the classifier runs where
        scikit-learn runs (the CPU) and so do the score rules; the result is a
        Python float whatever the backend. Asking for 'cupy' without a CUDA
        device raises a ``ValueError``."""

BOOTSTRAP_DOC = """
    n_bootstrap : int, default=0
        Number of bootstrap refits (each sample resampled with replacement,
        sizes kept) for ``proportion_interval_``; 0 skips it.
    confidence : float in (0, 1), default=0.95
        Level of the percentile interval.
    n_jobs : int or None, default=None
        Bootstrap refits run through joblib (:func:`mixstat.utils.parallel_map`).
    verbose : int, default=0
        Progress bar over the bootstrap refits when > 0.
    random_state : int, RandomState or None, default=None"""
