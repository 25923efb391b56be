"""Figures of fitted mixstat models (floor 4; needs matplotlib, the ``plot`` extra).

Every function draws on ``ax`` (a new figure when ``ax`` is None), returns the
matplotlib :class:`~matplotlib.axes.Axes` and never calls ``plt.show()``.
matplotlib is imported inside the functions, so ``import mixstat.plotting``
works without it and the first call raises a clear :class:`ImportError`.

- :func:`plot_regularization_path`: coefficients along a :func:`mixstat.moe.moe_path`;
- :func:`plot_selection`: the criterion of :class:`~mixstat.moe.GaussianMoERegressorCV`;
- :func:`plot_gates`: gate probabilities over one or two features;
- :func:`plot_moe_fit`: data coloured by expert posterior, expert lines, mixture mean;
- :func:`plot_squared_mixture`: signed components and density of a squared mixture;
- :func:`plot_mpe`: MPE estimates with intervals next to kappa* and kappa(F|H);
- :func:`plot_routing`: MixER routing heatmap (environment x expert);
- :func:`plot_training_curve`: losses / log-likelihoods per iteration or epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "plot_gates",
    "plot_moe_fit",
    "plot_mpe",
    "plot_regularization_path",
    "plot_routing",
    "plot_selection",
    "plot_squared_mixture",
    "plot_training_curve",
]

_MISSING_MPL = (
    "mixstat.plotting needs matplotlib, which is not installed: "
    "pip install 'mixstat[plot]' (or pip install matplotlib)."
)


def _plt():
    """``matplotlib.pyplot``, or an ImportError naming the ``plot`` extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised by monkeypatching
        raise ImportError(_MISSING_MPL) from exc
    return plt


def _axes(ax):
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots()
    return plt, ax


def _colors(n):
    plt = _plt()
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    return [cycle[i % len(cycle)] for i in range(n)]


def _feature_label(feature_names, j):
    if feature_names is None:
        return f"x{j}"
    return str(feature_names[j])


def _model_names(estimator):
    """The column names the estimator was fitted with (``feature_names_in_``)."""
    names = getattr(estimator, "feature_names_in_", None)
    return None if names is None else [str(c) for c in names]


def _host_matrix(estimator, X):
    """``X`` as a float matrix with the columns in the estimator's order, and
    the names of those columns (the model's, else the DataFrame's, else None)."""
    names = _model_names(estimator)
    cols = getattr(X, "columns", None)
    if cols is not None and names is not None:
        by_name = {str(c): c for c in cols}
        missing = [c for c in names if c not in by_name]
        if missing:
            raise ValueError(
                f"X lacks the column(s) {missing} that {type(estimator).__name__} "
                "was fitted with"
            )
        X = X[[by_name[c] for c in names]]
    elif cols is not None:
        names = [str(c) for c in cols]
    return np.asarray(X, dtype=float), names


def _model_input(estimator, A):
    """A grid ``A`` in the form the estimator was fitted with: a DataFrame
    with its column names when it has ``feature_names_in_`` (so that
    scikit-learn's "X does not have valid feature names" is not raised)."""
    names = _model_names(estimator)
    if names is None:
        return A
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - names come from a DataFrame
        return A
    return pd.DataFrame(A, columns=getattr(estimator, "feature_names_in_", names))


def _feature_index(feature, names, p, what="feature"):
    """Column index of ``feature`` (an int, or a column name)."""
    if isinstance(feature, str):
        if names is None or feature not in names:
            raise ValueError(
                f"{what} {feature!r} is not a column name"
                + ("" if names is None else f" (columns: {names})")
            )
        return names.index(feature)
    if not isinstance(feature, int | np.integer):
        raise ValueError(f"{what} must be a column index or name, got {feature!r}")
    f = int(feature)
    if not 0 <= f < p:
        raise ValueError(f"{what} {f} out of range for X with {p} features")
    return f


# ---------------------------------------------------------------- MoE path ---
def plot_regularization_path(
    path, *, which="coef", feature_names=None, alpha=None, components=None, ax=None
):
    r"""Coefficients of every expert (or gate) along a regularisation path.

    One line per (component, feature) pair that is non-zero somewhere on the
    path (a line that stays at zero carries no information); the colour is
    the feature, the line style the component. The x axis is the penalty
    :math:`\alpha` on a log scale, decreasing to the right (the order in
    which the path is computed, from ``alpha_max`` where every slope is 0).

    Parameters
    ----------
    path : MoEPath
        The result of :func:`mixstat.moe.moe_path`.
    which : {'coef', 'gate_coef'}, default='coef'
        Expert slopes :math:`b_{kj}` or gate slopes :math:`w_{kj}`.
    feature_names : sequence of str, optional
        Default: the path's ``feature_names_in_`` / ``feature_names`` when it
        has them (a path computed on a DataFrame), else ``x0, x1, ...``.
    alpha : float, optional
        A penalty to mark with a vertical line (e.g. the one selected by BIC).
    components : sequence of int, optional
        The components to draw (default: all).
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
        Each coefficient line has ``gid`` ``"{which}-{k}-{j}"``.
    """
    if which not in ("coef", "gate_coef"):
        raise ValueError(f"which must be 'coef' or 'gate_coef', got {which!r}")
    if not (hasattr(path, "alphas") and hasattr(path, which)):
        raise TypeError(
            "path must be the MoEPath returned by mixstat.moe.moe_path (with 'alphas' "
            f"and '{which}'), got {type(path).__name__}"
        )
    alphas = np.asarray(path.alphas, dtype=float)
    coef = np.asarray(getattr(path, which), dtype=float)
    if coef.ndim != 3 or coef.shape[0] != alphas.size:
        raise ValueError(
            f"path.{which} must have shape (n_alphas, n_components, n_features) with "
            f"n_alphas={alphas.size}, got {coef.shape}"
        )
    _, K, p = coef.shape
    if feature_names is None:  # a path computed on a DataFrame may carry its names
        for attr in ("feature_names_in_", "feature_names_in", "feature_names"):
            names = getattr(path, attr, None)
            if names is not None and len(names) == p:
                feature_names = [str(c) for c in names]
                break
    if feature_names is not None and len(feature_names) != p:
        raise ValueError(
            f"feature_names has {len(feature_names)} names for {p} features"
        )
    comps = range(K) if components is None else [int(k) for k in components]
    for k in comps:
        if not 0 <= k < K:
            raise ValueError(f"component {k} out of range for {K} components")
    _, ax = _axes(ax)
    colors = _colors(p)
    styles = ["-", "--", ":", "-."]
    shown = set()
    for k in comps:
        for j in range(p):
            if not np.any(coef[:, k, j] != 0):
                continue
            label = _feature_label(feature_names, j) if j not in shown else None
            shown.add(j)
            ax.plot(
                alphas,
                coef[:, k, j],
                color=colors[j],
                ls=styles[k % len(styles)],
                label=label,
                gid=f"{which}-{k}-{j}",
            )
    ax.axhline(0.0, color="0.6", lw=0.8, gid="zero")
    if alpha is not None:
        ax.axvline(
            float(alpha),
            color="k",
            ls="--",
            lw=1.0,
            gid="selected",
            label=f"alpha = {float(alpha):.3g}",
        )
    if alphas.size and np.all(alphas > 0):
        ax.set_xscale("log")
    lo, hi = float(alphas.min()), float(alphas.max())
    if hi > lo:
        ax.set_xlim(hi, lo)
    ax.set_xlabel("alpha (penalty, decreasing)")
    ax.set_ylabel("expert slopes" if which == "coef" else "gate slopes")
    styles_note = ", ".join(f"expert {k}: '{styles[k % len(styles)]}'" for k in comps)
    ax.set_title(f"Regularisation path ({styles_note})", fontsize="medium")
    if shown or alpha is not None:
        ax.legend(fontsize="small", ncol=2)
    return ax


def plot_selection(estimator, *, ax=None):
    """Model-selection criterion over the grid of a fitted ``GaussianMoERegressorCV``.

    For :class:`~mixstat.moe.GaussianMoERegressorCV`: one line per
    ``(n_components, alpha_gate)`` over the expert penalty ``alpha`` (BIC,
    lower is better, or the mean held-out log-likelihood when ``cv`` was
    given, higher is better), with the selected triple marked.

    Parameters
    ----------
    estimator : fitted GaussianMoERegressorCV
        Anything with ``criterion_`` (a dict with ``n_components``,
        ``alpha_gate``, ``alpha`` and ``bic`` or ``cv_loglik``) and ``alpha_``,
        ``n_components_``, ``alpha_gate_``.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    if not hasattr(estimator, "get_params") or not hasattr(type(estimator), "fit"):
        raise TypeError(
            f"expected a fitted GaussianMoERegressorCV, got {type(estimator).__name__}"
        )
    check_is_fitted(estimator, "criterion_")
    crit = estimator.criterion_
    key = "bic" if "bic" in crit else "cv_loglik"
    if key not in crit:
        raise ValueError("criterion_ holds neither 'bic' nor 'cv_loglik'")
    Ks = np.asarray(crit["n_components"])
    ags = np.asarray(crit["alpha_gate"])
    alphas = np.asarray(crit["alpha"], dtype=float)
    vals = np.asarray(crit[key], dtype=float)
    _, ax = _axes(ax)
    pairs = sorted({(int(k), float(g)) for k, g in zip(Ks, ags, strict=True)})
    colors = _colors(len(pairs))
    for (K, ag), c in zip(pairs, colors, strict=True):
        m = (Ks == K) & (ags == ag)
        order = np.argsort(alphas[m])[::-1]
        label = (
            f"K={K}" if len({g for _, g in pairs}) == 1 else f"K={K}, alpha_gate={ag:g}"
        )
        ax.plot(
            alphas[m][order],
            vals[m][order],
            ".-",
            color=c,
            label=label,
            gid=f"criterion-{K}-{ag:g}",
        )
    sel = (
        (Ks == estimator.n_components_)
        & (ags == estimator.alpha_gate_)
        & np.isclose(alphas, estimator.alpha_)
    )
    if np.any(sel):
        ax.plot(
            alphas[sel][:1],
            vals[sel][:1],
            "k*",
            ms=14,
            gid="selected",
            label=f"selected: K={estimator.n_components_}, "
            f"alpha={estimator.alpha_:.3g}",
        )
    if np.all(alphas > 0):
        ax.set_xscale("log")
    if alphas.max() > alphas.min():
        ax.set_xlim(alphas.max() * 1.2, alphas.min() / 1.2)
    ax.set_xlabel("alpha (penalty, decreasing)")
    ax.set_ylabel(
        "BIC (lower is better)"
        if key == "bic"
        else "held-out log-likelihood (higher is better)"
    )
    ax.legend(fontsize="small")
    return ax


# ------------------------------------------------------------------- gates ---
def _gate_probabilities(estimator, X):
    if hasattr(estimator, "predict_gates"):
        return np.asarray(estimator.predict_gates(X), dtype=float)
    if hasattr(estimator, "route") and hasattr(estimator, "n_experts"):
        routes = np.asarray(estimator.route(X))
        return np.eye(int(estimator.n_experts))[routes]
    raise TypeError(
        f"{type(estimator).__name__} has no predict_gates (nor a hard route): "
        "plot_gates needs a gated model such as mixstat.moe.GaussianMoERegressor"
    )


def plot_gates(
    estimator,
    X,
    features=(0,),
    *,
    grid_resolution=100,
    fixed=None,
    feature_names=None,
    scatter=True,
    ax=None,
):
    r"""Gate probabilities :math:`g_k(x)` over one or two features.

    The other features are held at ``fixed`` (default: their mean over
    ``X``). With one feature, one curve per component over the range of
    ``X[:, feature]``; with two, an image whose colour at each point mixes
    the components' colours with weights :math:`g_k(x)` (pure colour: one
    gate takes it all), with the training points on top.

    Works for any fitted estimator with ``predict_gates(X)`` returning
    ``(n_samples, n_components)`` probabilities (e.g.
    :class:`mixstat.moe.GaussianMoERegressor`), and for hard-routing models
    with ``route(X)`` and ``n_experts`` (:class:`mixstat.mixer.MixERRegressor`
    fitted without a separate ``Z``), whose gates are 0/1.

    Parameters
    ----------
    estimator : fitted estimator
    X : array-like of shape (n_samples, n_features)
        Sets the plotting range and the fixed values.
    features : int, str or sequence of one or two of them, default=(0,)
        Column indices, or column names of a DataFrame ``X``.
    grid_resolution : int, default=100
    fixed : array-like of shape (n_features,), optional
        Values of the features that are not plotted.
    feature_names : sequence of str, optional
        Axis labels; default: the estimator's ``feature_names_in_`` (a
        DataFrame's columns), else ``x0, x1, ...``. The grid is passed to the
        estimator as a DataFrame with those columns when it was fitted on one.
    scatter : bool, default=True
        Two features: draw ``X`` on the image.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    check_is_fitted(estimator)
    X, names = _host_matrix(estimator, X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity")
    if feature_names is None:
        feature_names = names
    p = X.shape[1]
    single = isinstance(features, str | int | np.integer)
    flist = [features] if single else list(features)
    feats = [_feature_index(f, names, p) for f in flist]
    if len(feats) not in (1, 2) or len(set(feats)) != len(feats):
        raise ValueError(
            f"features must be one or two distinct indices, got {features!r}"
        )
    base = (
        X.mean(axis=0) if fixed is None else np.asarray(fixed, dtype=float).reshape(-1)
    )
    if base.shape != (p,):
        raise ValueError(f"fixed must have {p} values, got {base.shape}")
    n = int(grid_resolution)
    if n < 2:
        raise ValueError(f"grid_resolution must be >= 2, got {grid_resolution}")
    _, ax = _axes(ax)
    ranges = [(X[:, f].min(), X[:, f].max()) for f in feats]
    ranges = [(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5) for lo, hi in ranges]
    if len(feats) == 1:
        (f,) = feats
        grid = np.linspace(*ranges[0], n)
        Xg = np.tile(base, (n, 1))
        Xg[:, f] = grid
        G = _gate_probabilities(estimator, _model_input(estimator, Xg))
        colors = _colors(G.shape[1])
        for k in range(G.shape[1]):
            ax.plot(grid, G[:, k], color=colors[k], label=f"gate {k}", gid=f"gate-{k}")
        ax.set_xlim(*ranges[0])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(_feature_label(feature_names, f))
        ax.set_ylabel("gate probability $g_k(x)$")
        ax.legend(fontsize="small")
        return ax
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    f1, f2 = feats
    g1, g2 = np.meshgrid(np.linspace(*ranges[0], n), np.linspace(*ranges[1], n))
    Xg = np.tile(base, (g1.size, 1))
    Xg[:, f1], Xg[:, f2] = g1.ravel(), g2.ravel()
    G = _gate_probabilities(estimator, _model_input(estimator, Xg))
    K = G.shape[1]
    colors = _colors(K)
    rgb = np.array([to_rgb(c) for c in colors])  # (K, 3)
    img = np.clip(G @ rgb, 0.0, 1.0).reshape(n, n, 3)
    ax.imshow(
        img,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        extent=(*ranges[0], *ranges[1]),
    )
    if scatter:
        ax.scatter(X[:, f1], X[:, f2], s=6, c="k", alpha=0.5, linewidths=0)
    ax.set_xlim(*ranges[0])
    ax.set_ylim(*ranges[1])
    ax.set_xlabel(_feature_label(feature_names, f1))
    ax.set_ylabel(_feature_label(feature_names, f2))
    ax.legend(
        handles=[Patch(color=colors[k], label=f"gate {k}") for k in range(K)],
        fontsize="small",
        loc="best",
    )
    ax.set_title("gate probabilities (colours mixed by $g_k(x)$)", fontsize="medium")
    return ax


# ---------------------------------------------------------------- MoE fit ---
def _expert_predictions(model, A):
    if hasattr(model, "predict_experts"):
        return np.asarray(model.predict_experts(A), dtype=float)
    experts = getattr(model, "experts_", None)
    if experts is not None:
        return np.column_stack([np.ravel(e.predict(A)) for e in experts]).astype(float)
    raise TypeError(
        f"{type(model).__name__} has no predict_experts (nor experts_): plot_moe_fit "
        "needs a mixture of experts such as mixstat.moe.GaussianMoERegressor"
    )


def _posterior(model, X, y, K):
    if hasattr(model, "predict_posterior"):
        return np.asarray(model.predict_posterior(X, y), dtype=float)
    if hasattr(model, "route"):  # hard routing (MixER): the posterior is one-hot
        return np.eye(K)[np.asarray(model.route(X), dtype=int)]
    raise TypeError(
        f"{type(model).__name__} has neither predict_posterior nor route: plot_moe_fit "
        "cannot colour the data by expert"
    )


def plot_moe_fit(
    model,
    X,
    y,
    feature=None,
    *,
    colour="posterior",
    fixed="mean",
    n_points=200,
    feature_names=None,
    response_name=None,
    show_mean=True,
    ax=None,
):
    r"""The data coloured by expert, each expert's fitted line and the mixture mean.

    For a mixture of experts
    :math:`p(y\mid x) = \sum_k g_k(x)\, N(y; \mu_k(x), \sigma_k^2)`
    the figure shows, over the range of one feature :math:`x_j`:

    - the data :math:`(x_{ij}, y_i)`, coloured by the posterior
      :math:`\tau_{ik} = P(z_i = k \mid x_i, y_i)` (``predict_posterior``):
      the point's colour mixes the experts' colours with weights
      :math:`\tau_{ik}` (``colour='posterior'``; a pure colour means one
      expert takes it all), or takes the colour of the most probable expert
      (``colour='label'``);
    - each expert's mean :math:`\mu_k(x)` (``predict_experts``) as a line;
    - the mixture mean :math:`E[y\mid x] = \sum_k g_k(x)\mu_k(x)`
      (``predict``) as a black dashed line.

    With one feature these are the fitted lines themselves. With several,
    the lines are *partial effects*: :math:`x_j` varies over its range and
    the other features are held at ``fixed`` (their mean, or median), while
    the points are the raw responses.

    Works for any fitted model with ``predict_experts(X)`` (or a list
    ``experts_`` of fitted regressors), ``predict(X)`` and
    ``predict_posterior(X, y)`` (:class:`mixstat.moe.GaussianMoERegressor`),
    or ``route(X)`` for hard-routing models (:class:`mixstat.mixer.MixERRegressor`,
    whose points take the colour of the expert that the gate routes them to).

    Parameters
    ----------
    model : fitted estimator
    X : array-like or DataFrame of shape (n_samples, n_features)
        The data to draw (usually the training data); it also sets the range
        of the feature and the fixed values of the others.
    y : array-like or Series of shape (n_samples,)
    feature : int or str, optional
        The feature on the x axis (index or column name); optional when the
        model has one feature.
    colour : {'posterior', 'label'}, default='posterior'
    fixed : {'mean', 'median'} or array-like of shape (n_features,), default='mean'
        Values of the other features.
    n_points : int, default=200
        Points of the lines.
    feature_names : sequence of str, optional
        Default: the model's ``feature_names_in_`` (a DataFrame's columns),
        else ``x0, x1, ...``.
    response_name : str, optional
        Default: ``y.name`` for a pandas Series, else ``'y'``.
    show_mean : bool, default=True
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
        The expert lines have ``gid`` ``'expert-k'``, the mixture mean
        ``'mean'``, the data (a PathCollection) ``'data'``.

    See Also
    --------
    plot_gates : the gate probabilities over one or two features.
    """
    if not hasattr(model, "get_params"):
        raise TypeError(f"model must be a fitted estimator, got {type(model).__name__}")
    check_is_fitted(model)
    if colour not in ("posterior", "label"):
        raise ValueError(f"colour must be 'posterior' or 'label', got {colour!r}")
    Xa, names = _host_matrix(model, X)
    if Xa.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {Xa.shape}")
    if not np.all(np.isfinite(Xa)):
        raise ValueError("X contains NaN or infinity")
    ya = np.asarray(y, dtype=float).reshape(-1)
    if ya.shape[0] != Xa.shape[0]:
        raise ValueError(f"y has {ya.shape[0]} values for {Xa.shape[0]} rows of X")
    n, p = Xa.shape
    if feature_names is not None:
        if len(feature_names) != p:
            raise ValueError(
                f"feature_names has {len(feature_names)} names for {p} features"
            )
        names = [str(c) for c in feature_names]
    if feature is None:
        if p != 1:
            raise ValueError(
                f"X has {p} features: choose the one to draw with feature= "
                "(an index or a column name)"
            )
        feature = 0
    f = _feature_index(feature, names, p)
    if isinstance(fixed, str):
        if fixed not in ("mean", "median"):
            raise ValueError(f"fixed must be 'mean', 'median' or values, got {fixed!r}")
        base = Xa.mean(axis=0) if fixed == "mean" else np.median(Xa, axis=0)
    else:
        base = np.asarray(fixed, dtype=float).reshape(-1)
        if base.shape != (p,):
            raise ValueError(f"fixed must have {p} values, got shape {base.shape}")
    n_points = int(n_points)
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    if response_name is None:
        response_name = getattr(y, "name", None)
        response_name = "y" if response_name is None else str(response_name)

    # the model sees the input type it was fitted with (a DataFrame with its
    # columns, in its order, when it has feature_names_in_)
    X_model = _model_input(model, Xa)
    lo, hi = float(Xa[:, f].min()), float(Xa[:, f].max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    grid = np.linspace(lo, hi, n_points)
    Xg = np.tile(base, (n_points, 1))
    Xg[:, f] = grid
    Ag = _model_input(model, Xg)
    E = _expert_predictions(model, Ag)
    K = E.shape[1]
    tau = _posterior(model, X_model, ya, K)
    if tau.shape != (n, K):
        raise ValueError(
            f"the posterior has shape {tau.shape}, expected ({n}, {K}) from the experts"
        )

    from matplotlib.colors import to_rgb
    from matplotlib.lines import Line2D

    _, ax = _axes(ax)
    colors = _colors(K)
    rgb = np.array([to_rgb(c) for c in colors])
    if colour == "posterior":
        point_colors = np.clip(tau @ rgb, 0.0, 1.0)
    else:
        point_colors = rgb[np.argmax(tau, axis=1)]
    ax.scatter(Xa[:, f], ya, c=point_colors, s=14, alpha=0.8, linewidths=0, gid="data")
    for k in range(K):
        ax.plot(grid, E[:, k], color=colors[k], lw=2, gid=f"expert-{k}")
    handles = [
        Line2D([], [], color=colors[k], lw=2, label=f"expert {k}") for k in range(K)
    ]
    if show_mean:
        mean = np.asarray(model.predict(Ag), dtype=float).reshape(-1)
        ax.plot(grid, mean, color="k", ls="--", lw=1.8, gid="mean")
        handles.append(Line2D([], [], color="k", ls="--", lw=1.8, label="mixture mean"))
    ax.set_xlim(lo, hi)
    ax.set_xlabel(_feature_label(names, f))
    ax.set_ylabel(response_name)
    if p > 1:
        held = "mean" if isinstance(fixed, str) and fixed == "mean" else (
            "median" if isinstance(fixed, str) else "given values")
        ax.set_title(f"partial effect of {_feature_label(names, f)} "
                     f"(other features at their {held})", fontsize="medium")
    ax.legend(handles=handles, fontsize="small", loc="best",
              title="points: "
              + ("posterior" if colour == "posterior" else "MAP expert"),
              title_fontsize="small")
    return ax


# ------------------------------------------------------- squared mixtures ---
def plot_squared_mixture(
    estimator,
    X=None,
    *,
    features=None,
    n_points=300,
    show_components=True,
    bins=40,
    ax=None,
):
    r"""Signed components and density of a fitted ``SquaredGaussianMixture``.

    See :class:`~mixstat.circuits.SquaredGaussianMixture` for the model.

    **One feature** (``n_features == 1``, or ``features`` one index): the
    density :math:`p(x) = c(x)^2 / Z` (thick line) and, when the model is
    one-dimensional, the signed components
    :math:`w_k N(x; \mu_k, \Sigma_k)/\sqrt{Z}` (dashed for negative weights)
    together with :math:`c(x)/\sqrt{Z}`, whose square is the density. For a
    one-feature view of a multivariate model the density is the exact
    marginal (:meth:`~mixstat.circuits.SquaredGaussianMixture.marginal`) and
    no components are drawn (the marginal of a squared mixture is not the
    square of the marginal components). ``X`` adds a histogram.

    **Two features**: filled contours of the (marginal) density with each
    component's 2-standard-deviation ellipse, solid for positive weights and
    dashed for negative ones, and ``X`` on top.

    Parameters
    ----------
    estimator : fitted SquaredGaussianMixture
        Needs ``weights_`` (signed), ``means_``, ``covariances_``,
        ``log_normalizer_``, ``covariance_type``, ``score_samples`` and
        ``marginal``.
    X : array-like of shape (n_samples, n_features), optional
        Data to draw; its range (padded by 10 %) sets the plotting range
        (else the components' means +- 4 standard deviations).
    features : int or sequence of one or two int, optional
        Default: the only feature of a 1-D model, else ``(0, 1)``.
    n_points : int, default=300
        Grid points per axis.
    show_components : bool, default=True
    bins : int, default=40
        Histogram bins (one feature, with ``X``).
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
        Lines have ``gid`` ``'density'``, ``'c'``, ``'component-k'``;
        ellipses ``'component-k'``.
    """
    check_is_fitted(estimator, ["weights_", "means_", "covariances_"])
    if not all(
        hasattr(estimator, a)
        for a in ("log_normalizer_", "covariance_type", "score_samples")
    ):
        raise TypeError(
            f"plot_squared_mixture needs a fitted SquaredGaussianMixture, got "
            f"{type(estimator).__name__}"
        )
    w = np.asarray(estimator.weights_, dtype=float)
    mu = np.asarray(estimator.means_, dtype=float)
    K, d = mu.shape
    cov = _full_covariances(estimator.covariances_, estimator.covariance_type, K, d)
    if features is None:
        feats = [0] if d == 1 else [0, 1]
    else:
        feats = [int(f) for f in np.atleast_1d(features)]
    if (
        len(feats) not in (1, 2)
        or len(set(feats)) != len(feats)
        or any(not 0 <= f < d for f in feats)
    ):
        raise ValueError(
            f"features must be one or two distinct indices in [0, {d}), "
            f"got {features!r}"
        )
    if X is not None:
        X = _host_matrix(estimator, X)[0]
        if X.ndim != 2 or X.shape[1] != d:
            raise ValueError(f"X must have shape (n_samples, {d}), got {X.shape}")
    n = int(n_points)
    if n < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")

    def span(f):
        if X is not None:  # the data's range, padded
            lo, hi = float(X[:, f].min()), float(X[:, f].max())
            pad = 0.1 * (hi - lo) if hi > lo else 1.0
            return lo - pad, hi + pad
        sd = np.sqrt(cov[:, f, f])
        return float(np.min(mu[:, f] - 4 * sd)), float(np.max(mu[:, f] + 4 * sd))

    def density(points):
        if len(feats) == d:
            full = np.empty((points.shape[0], d))
            full[:, feats] = points
            return np.exp(estimator.score_samples(_model_input(estimator, full)))
        return np.exp(estimator.marginal(feats).score_samples(points))

    _, ax = _axes(ax)
    colors = _colors(K)
    if len(feats) == 1:
        (f,) = feats
        lo, hi = span(f)
        grid = np.linspace(lo, hi, n)
        if X is not None:
            ax.hist(X[:, f], bins=bins, density=True, color="0.85", label="data")
        if show_components and d == 1:
            from .primitives import gaussian_log_density

            logf = gaussian_log_density(grid[:, None], mu, cov, "full")  # (n, K)
            comps = w[None, :] * np.exp(logf - 0.5 * float(estimator.log_normalizer_))
            for k in range(K):
                ax.plot(
                    grid,
                    comps[:, k],
                    color=colors[k],
                    lw=1.2,
                    ls="-" if w[k] >= 0 else "--",
                    gid=f"component-{k}",
                    label=f"component {k} ($w_{{{k}}}$ = {w[k]:+.2f})",
                )
            ax.plot(
                grid,
                comps.sum(axis=1),
                color="0.4",
                lw=1.0,
                ls=":",
                gid="c",
                label=r"$c(x)/\sqrt{Z}$",
            )
            ax.axhline(0.0, color="0.6", lw=0.6, gid="zero")
        ax.plot(
            grid,
            density(grid[:, None]),
            color="k",
            lw=2.2,
            label="density $c^2/Z$",
            gid="density",
        )
        ax.set_xlim(lo, hi)
        ax.set_xlabel(_feature_label(_model_names(estimator), f))
        ax.set_ylabel("density")
        ax.legend(fontsize="small")
        return ax
    from matplotlib.patches import Ellipse

    f1, f2 = feats
    (lo1, hi1), (lo2, hi2) = span(f1), span(f2)
    g1, g2 = np.meshgrid(np.linspace(lo1, hi1, n), np.linspace(lo2, hi2, n))
    dens = density(np.column_stack([g1.ravel(), g2.ravel()])).reshape(g1.shape)
    ax.contourf(g1, g2, dens, levels=12, cmap="Greys")
    if X is not None:
        ax.scatter(X[:, f1], X[:, f2], s=4, c="tab:orange", alpha=0.4, linewidths=0)
    if show_components:
        for k in range(K):
            S = cov[k][np.ix_([f1, f2], [f1, f2])]
            vals, vecs = np.linalg.eigh(S)
            angle = float(np.degrees(np.arctan2(vecs[1, -1], vecs[0, -1])))
            width, height = 2 * 2 * np.sqrt(np.maximum(vals[::-1], 0.0))
            ax.add_patch(
                Ellipse(
                    (mu[k, f1], mu[k, f2]),
                    width,
                    height,
                    angle=angle,
                    fill=False,
                    lw=1.6,
                    ec=colors[k],
                    ls="-" if w[k] >= 0 else "--",
                    gid=f"component-{k}",
                    label=f"component {k} ($w_{{{k}}}$ = {w[k]:+.2f})",
                )
            )
        ax.legend(fontsize="small", loc="upper right")
    ax.set_xlim(lo1, hi1)
    ax.set_ylim(lo2, hi2)
    ax.set_xlabel(_feature_label(_model_names(estimator), f1))
    ax.set_ylabel(_feature_label(_model_names(estimator), f2))
    ax.set_title(
        "squared mixture: density, components (dashed: negative)", fontsize="medium"
    )
    return ax


def _full_covariances(cov, ctype, K, d):
    cov = np.asarray(cov, dtype=float)
    if ctype == "full":
        return cov.reshape(K, d, d)
    if ctype == "diag":
        return cov.reshape(K, d)[:, :, None] * np.eye(d)
    return cov.reshape(K)[:, None, None] * np.eye(d)


# --------------------------------------------------------------------- MPE ---
def _mpe_entries(estimators, labels):
    """[(label, estimate, (lo, hi) or None)] from estimators / numbers."""
    if (
        isinstance(estimators, tuple)
        and len(estimators) == 2
        and isinstance(estimators[0], int | float | np.floating | np.integer)
        and not isinstance(estimators[1], int | float | np.floating | np.integer)
    ):
        estimators = [estimators]  # one (estimate, (low, high)) pair
    if isinstance(estimators, Mapping):
        items = list(estimators.items())
    elif isinstance(estimators, Sequence) and not isinstance(estimators, str):
        items = [(None, e) for e in estimators]
    else:
        items = [(None, estimators)]
    if labels is not None:
        if len(labels) != len(items):
            raise ValueError(
                f"labels has {len(labels)} names for {len(items)} estimates"
            )
        items = [(lab, e) for lab, (_, e) in zip(labels, items, strict=True)]
    out = []
    for name, e in items:
        if isinstance(e, int | float | np.floating | np.integer):
            out.append((name or f"estimate {len(out)}", float(e), None))
            continue
        if isinstance(e, tuple) and len(e) == 2:
            val, iv = e
            lo, hi = (float(v) for v in iv)
            out.append((name or f"estimate {len(out)}", float(val), (lo, hi)))
            continue
        if not hasattr(e, "get_params"):
            raise TypeError(
                "plot_mpe takes fitted mixstat.mpe estimators, numbers or (estimate, "
                f"(low, high)) pairs, got {type(e).__name__}"
            )
        check_is_fitted(e, "proportion_")
        iv = getattr(e, "proportion_interval_", None)
        iv = None if iv is None else tuple(float(v) for v in iv)
        out.append((name or type(e).__name__, float(e.proportion_), iv))
    if not out:
        raise ValueError("plot_mpe needs at least one estimate")
    return out


def plot_mpe(estimators, *, kappa_star=None, kappa_max=None, labels=None, ax=None):
    r"""Mixture-proportion estimates with their intervals, next to :math:`\kappa^*`
    and :math:`\kappa(F|H)`.

    A forest plot: one row per estimate, a point at ``proportion_`` and a
    horizontal bar over ``proportion_interval_`` (the bootstrap interval of
    a :mod:`mixstat.mpe` estimator fitted with ``n_bootstrap > 0``); vertical
    lines mark the true proportion :math:`\kappa^*` (solid) and the largest
    proportion identifiable from the two samples,
    :math:`\kappa(F|H) = \operatorname{ess\,inf} f/h \ge \kappa^*` (dashed),
    which base estimators converge to when irreducibility fails.

    Parameters
    ----------
    estimators : estimator, sequence or mapping
        Fitted MPE estimators (``proportion_``, optional
        ``proportion_interval_``), plain numbers, or ``(estimate, (low,
        high))`` pairs; a mapping gives the row labels.
    kappa_star : float, optional
    kappa_max : float, optional
        :math:`\kappa(F|H)`, e.g. ``kappa_max`` of
        :func:`mixstat.datasets.make_sumpe_synthetic`.
    labels : sequence of str, optional
        Row labels (default: mapping keys or class names).
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
        Estimates are markers with ``gid`` ``'estimate-i'``, intervals line
        collections with ``gid`` ``'interval-i'`` (row ``i`` from the top).
    """
    entries = _mpe_entries(estimators, labels)
    _, ax = _axes(ax)
    colors = _colors(len(entries))
    n = len(entries)
    for i, (_name, val, iv) in enumerate(entries):
        yv = n - 1 - i
        if iv is not None:
            # the percentile interval need not contain the estimate: draw it as is
            ax.hlines([yv], iv[0], iv[1], color=colors[i], lw=2.5, gid=f"interval-{i}")
        ax.plot([val], [yv], "o", color=colors[i], ms=7, gid=f"estimate-{i}")
    if kappa_star is not None:
        ax.axvline(
            float(kappa_star),
            color="k",
            lw=1.5,
            gid="kappa_star",
            label=rf"$\kappa^*$ = {float(kappa_star):.3f}",
        )
    if kappa_max is not None:
        ax.axvline(
            float(kappa_max),
            color="k",
            lw=1.5,
            ls="--",
            gid="kappa_max",
            label=rf"$\kappa(F|H)$ = {float(kappa_max):.3f}",
        )
    ax.set_yticks(range(n))
    ax.set_yticklabels([e[0] for e in entries][::-1])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("mixture proportion")
    if kappa_star is not None or kappa_max is not None:
        handles = [
            h for h in ax.get_lines() if h.get_gid() in ("kappa_star", "kappa_max")
        ]
        ax.legend(handles=handles, fontsize="small", loc="best")
    return ax


# ------------------------------------------------------------------ MixER ---
def plot_routing(
    estimator,
    *,
    groups=None,
    X=None,
    Z=None,
    history=False,
    normalize=True,
    annotate=True,
    ax=None,
):
    r"""MixER routing heatmap: environments (or groups) x experts.

    Cell :math:`(e, k)` is the number (``normalize=False``) or the share of
    the units of row :math:`e` routed to expert :math:`k`:

    - :class:`~mixstat.mixer.MixERODE`: the rows are the training
      environments (``envs_``) and each environment is routed whole
      (``routing_``), so a row is one-hot; with ``groups`` (one label per
      environment, e.g. its ODE family) the rows are the groups and a cell
      is the share of the group's environments sent to the expert; with
      ``history=True`` a cell is the share of the outer training steps
      (``history_['routing']``) at which the environment went to the expert.
    - :class:`~mixstat.mixer.MixERRegressor`: the units are samples
      (``labels_``, or ``route(X, Z)`` when ``X`` is given); ``groups`` gives
      the environment of every sample.
    - an array of expert indices (one per unit), with ``groups``.

    Parameters
    ----------
    estimator : fitted MixERODE / MixERRegressor, or array-like of int
    groups : array-like, optional
    X, Z : array-like, optional
        MixERRegressor: route these samples instead of the training set.
    history : bool, default=False
    normalize : bool, default=True
    annotate : bool, default=True
        Write each cell's value.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
        ``ax.images[0].get_array()`` holds the table.
    """
    n_experts = None
    row_names = None
    if hasattr(estimator, "get_params"):
        if (
            hasattr(estimator, "routing_")
            or hasattr(estimator, "envs_")
            or "context_dim" in estimator.get_params()
        ):
            check_is_fitted(estimator, "routing_")
            n_experts = int(estimator.n_experts)
            if history:
                hist = getattr(estimator, "history_", None) or {}
                steps = hist.get("routing") if isinstance(hist, Mapping) else None
                if not steps:
                    raise ValueError(
                        "history=True needs history_['routing'] (no training "
                        "steps were recorded: n_outer=0?)"
                    )
                R = np.asarray(steps, dtype=int)  # (n_steps, n_envs)
                table = np.stack(
                    [(k == R).sum(axis=0) for k in range(n_experts)], axis=1
                )
                table = table.astype(float)
                if groups is not None:
                    raise ValueError(
                        "history=True draws environments; do not pass groups"
                    )
                row_names = [str(e) for e in estimator.envs_]
                return _heatmap(
                    ax,
                    table,
                    row_names,
                    n_experts,
                    normalize,
                    annotate,
                    "environment",
                    "share of training steps",
                )
            routes = np.asarray(estimator.routing_, dtype=int)
            if groups is None:
                groups = np.asarray(estimator.envs_)
                row_label = "environment"
            else:
                row_label = "group"
        elif hasattr(estimator, "n_experts"):
            check_is_fitted(estimator, "labels_")
            n_experts = int(estimator.n_experts)
            routes = np.asarray(
                estimator.labels_ if X is None else estimator.route(X, Z), dtype=int
            )
            if groups is None:
                raise ValueError(
                    "MixERRegressor routes samples: pass groups= (the environment of "
                    "every sample) to draw an environment x expert table"
                )
            row_label = "environment"
        else:
            raise TypeError(
                f"plot_routing needs a MixER estimator, got {type(estimator).__name__}"
            )
    else:
        routes = np.asarray(estimator)
        if routes.ndim != 1 or routes.size == 0 or routes.dtype.kind not in "iu":
            raise ValueError("routes must be a non-empty 1-D array of expert indices")
        if np.any(routes < 0):
            raise ValueError("expert indices must be >= 0")
        row_label = "environment"
        if groups is None:
            groups = np.arange(routes.size)
    groups = np.asarray(groups)
    if groups.shape != routes.shape:
        raise ValueError(
            f"groups has shape {groups.shape}; one label per routed unit "
            f"({routes.shape}) is needed"
        )
    if n_experts is None:
        n_experts = int(routes.max()) + 1
    rows, inv = np.unique(groups, return_inverse=True)
    table = np.zeros((rows.size, n_experts))
    np.add.at(table, (inv, routes), 1.0)
    row_names = [str(r) for r in rows]
    return _heatmap(
        ax,
        table,
        row_names,
        n_experts,
        normalize,
        annotate,
        row_label,
        "share routed" if normalize else "count routed",
    )


def _heatmap(
    ax, table, row_names, n_experts, normalize, annotate, row_label, cbar_label
):
    _, ax = _axes(ax)
    if normalize:
        tot = table.sum(axis=1, keepdims=True)
        table = np.divide(table, tot, out=np.zeros_like(table), where=tot > 0)
    vmax = 1.0 if normalize else max(float(table.max()), 1.0)
    im = ax.imshow(
        table, aspect="auto", cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest"
    )
    ax.figure.colorbar(im, ax=ax, label=cbar_label)
    ax.set_xticks(range(n_experts))
    ax.set_xticklabels([str(k) for k in range(n_experts)])
    ax.set_yticks(range(len(row_names)))
    ax.set_yticklabels(row_names)
    ax.set_xlabel("expert")
    ax.set_ylabel(row_label)
    if annotate and table.size <= 400:
        for (i, k), v in np.ndenumerate(table):
            text = f"{v:.2f}" if normalize else f"{v:g}"
            ax.text(
                k,
                i,
                text,
                ha="center",
                va="center",
                fontsize="x-small",
                color="white" if v > 0.6 * vmax else "black",
            )
    return ax


# ------------------------------------------------------- training curves ---
def _curves_of(source):
    """[(label, values)], the y-axis label and the x-axis label."""
    if hasattr(source, "get_params"):
        name = type(source).__name__
        hist = getattr(source, "history_", None)
        if isinstance(hist, Mapping) and "loss" in hist:
            return [("training loss", hist["loss"])], "loss", "outer step"
        if hasattr(source, "train_curve_"):
            curves = [("train", source.train_curve_)]
            if len(getattr(source, "valid_curve_", None) or []):
                curves.append(("validation", source.valid_curve_))
            return curves, "mean log-likelihood", "epoch"
        if hasattr(source, "lower_bounds_"):
            return (
                [("penalised objective", source.lower_bounds_)],
                "penalised log-likelihood (mean)",
                "EM iteration",
            )
        check_is_fitted(source)
        raise TypeError(
            f"{name} records no training curve (looked for history_['loss'], "
            "train_curve_ / valid_curve_ and lower_bounds_)"
        )
    if isinstance(source, Mapping):
        return [(str(k), v) for k, v in source.items()], "value", "iteration"
    return [(None, source)], "value", "iteration"


def plot_training_curve(source, *, logy=False, ylabel=None, ax=None):
    """Training curve(s): a loss or log-likelihood per iteration / epoch.

    Parameters
    ----------
    source : fitted estimator, sequence of float or mapping of sequences
        - :class:`~mixstat.mixer.MixERODE`: ``history_['loss']`` per outer step;
        - :class:`~mixstat.circuits.SquaredCircuitDensity`: ``train_curve_``
          and ``valid_curve_`` (mean log-likelihood per epoch);
        - :class:`~mixstat.moe.GaussianMoERegressor`: ``lower_bounds_`` (the
          penalised objective after every EM iteration, non-decreasing);
        - a sequence of numbers (one line) or a mapping name -> sequence.
    logy : bool, default=False
        Logarithmic y axis (positive losses only).
    ylabel : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    curves, default_ylabel, xlabel = _curves_of(source)
    clean = []
    for label, vals in curves:
        v = np.asarray(vals, dtype=float).reshape(-1)
        if v.size == 0:
            raise ValueError(
                f"the training curve{'' if label is None else ' ' + repr(label)} "
                "is empty"
            )
        clean.append((label, v))
    _, ax = _axes(ax)
    for label, v in clean:
        ax.plot(
            np.arange(1, v.size + 1),
            v,
            marker="." if v.size < 50 else None,
            label=label,
        )
    if logy:
        if any(np.nanmin(v) <= 0 for _, v in clean):
            raise ValueError("logy=True needs positive values")
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or default_ylabel)
    if any(label is not None for label, _ in clean):
        ax.legend(fontsize="small")
    return ax
