"""``mixstat demo`` entry for the Lasso-penalised Gaussian mixture of experts."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np


def _fit_row(name, data, fit):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fit()
    return out, time.perf_counter() - t0


def _support_metrics(coef, true):
    tp = int(np.sum((coef != 0) & (true != 0)))
    fp = int(np.sum((coef != 0) & (true == 0)))
    fn = int(np.sum((coef == 0) & (true != 0)))
    return tp, fp, fn


def plot_path_and_gates(path, model, X, y, out_file):
    """Regularisation path (one panel per expert), BIC, and the gate regions
    in the (x1, x4) plane of the Khalili design."""
    import matplotlib.pyplot as plt

    K = path.coef.shape[1]
    fig, axes = plt.subplots(1, K + 2, figsize=(4.2 * (K + 2), 3.6))
    for k in range(K):
        ax = axes[k]
        for j in range(path.coef.shape[2]):
            ax.plot(path.alphas, path.coef[:, k, j], label=f"x{j}")
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("alpha")
        ax.set_title(f"expert {k} slopes")
    axes[0].legend(fontsize=7, ncol=2)
    bic = -2 * path.log_likelihood + path.df * np.log(len(y))
    axes[K].plot(path.alphas, bic, "k.-")
    axes[K].axvline(path.alphas[np.argmin(bic)], color="r", ls="--")
    axes[K].set_xscale("log")
    axes[K].invert_xaxis()
    axes[K].set_title("BIC (unpenalised log-lik)")
    axes[K].set_xlabel("alpha")
    ax = axes[K + 1]
    g1, g2 = np.meshgrid(np.linspace(-3, 3, 120), np.linspace(-3, 3, 120))
    grid = np.zeros((g1.size, X.shape[1]))
    grid[:, 0] = g1.ravel()
    grid[:, 3] = g2.ravel()
    gates = model.predict_gates(grid)[:, 1].reshape(g1.shape)
    cs = ax.contourf(g1, g2, gates, levels=np.linspace(0, 1, 11), cmap="coolwarm", alpha=0.7)
    fig.colorbar(cs, ax=ax, label="gate of expert 2")
    labels = model.predict_label(X, y)
    ax.scatter(X[:, 0], X[:, 3], c=labels, cmap="coolwarm", s=8, edgecolors="k", linewidths=0.2)
    ax.set_xlabel("x1")
    ax.set_ylabel("x4")
    ax.set_title("gate regions, MAP labels")
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)


def run(out_dir=None, quick=False):
    """Fit the Lasso MoE on the Khalili (2010) design; return the table rows."""
    from sklearn.metrics import adjusted_rand_score

    from ..datasets import make_khalili_moe, make_sparse_moe
    from ..primitives import match_components
    from ._moe import GaussianMoERegressor
    from ._path import GaussianMoERegressorCV, moe_path
    from ._relaxed import relaxed_bic_path

    rows = []
    X, y, P = make_khalili_moe(300, random_state=0, return_params=True)
    # the kernels' one-time cost (loaded from Numba's cache, or compiled in a
    # new environment) on a row of its own, so that fit times are fit times
    _, t = _fit_row("warm-up", "khalili", lambda: (
        GaussianMoERegressor(2, n_init=2, max_iter=5, random_state=0).fit(X[:60], y[:60]),
        GaussianMoERegressorCV(n_components=(2,), n_alphas=2, n_init=1, max_iter=5,
                               random_state=0).fit(X[:60], y[:60])))
    rows.append(dict(model="(Numba kernels: load or compile, once per process)",
                     data="-", fit_time_s=t, metric="-"))
    m, t = _fit_row("moe", "khalili", lambda: GaussianMoERegressor(
        2, alpha=0.02, alpha_gate=0.01, n_init=2 if quick else 3, random_state=0).fit(X, y))
    perm = match_components(P["coef"], m.coef_)
    tp, fp, fn = _support_metrics(m.coef_[perm], P["coef"])
    ari = adjusted_rand_score(P["labels"], m.predict_label(X, y))
    rows.append(dict(model="GaussianMoERegressor", data="Khalili n=300 p=6 K=2",
                     fit_time_s=t, metric=f"ARI={ari:.2f} TP={tp} FP={fp} FN={fn}"))
    path, t = _fit_row("path", "khalili", lambda: moe_path(
        X, y, n_components=2, n_alphas=8 if quick else 20, eps=0.02, alpha_gate=0.01,
        n_init=1 if quick else 2))
    bic = -2 * path.log_likelihood + path.df * np.log(len(y))
    i = int(np.argmin(bic))
    rows.append(dict(model="moe_path + BIC", data="Khalili n=300 p=6 K=2", fit_time_s=t,
                     metric=f"alpha={path.alphas[i]:.3g} nnz={int(np.count_nonzero(path.coef[i]))}"))
    cv, t = _fit_row("cv", "khalili", lambda: GaussianMoERegressorCV(
        n_components=(2,), n_alphas=8 if quick else 20, random_state=0).fit(X, y))
    perm = match_components(P["coef"], cv.coef_)
    tp, fp, fn = _support_metrics(cv.coef_[perm], P["coef"])
    rows.append(dict(model="GaussianMoERegressorCV() (default: relaxed refits, EBIC)",
                     data="Khalili n=300 p=6 K=2",
                     fit_time_s=t, metric=f"alpha={cv.alpha_:.3g} TP={tp} FP={fp} FN={fn}"))
    if not quick:
        Xh, yh, Ph = make_sparse_moe(200, 500, 2, random_state=0, return_params=True)
        # p >> n: relaxed_bic_path (penalty_power=1, refits, BIC), the
        # documented tool there (a fixed-alpha fit keeps about 70 false slopes)
        mh, t = _fit_row("hd", "sparse", lambda: relaxed_bic_path(
            Xh, yh, np.linspace(0.1, 0.25, 7), 2, alpha_gate=0.02, penalty_power=1,
            max_iter=300, random_state=0)[0])
        perm = match_components(np.column_stack([Ph["intercept"], Ph["coef"]]),
                                np.column_stack([mh.intercept_, mh.coef_]))
        tp, fp, fn = _support_metrics(mh.coef_[perm], Ph["coef"])
        ari = adjusted_rand_score(Ph["labels"], mh.predict_label(Xh, yh))
        rows.append(dict(model="relaxed_bic_path (penalty_power=1)",
                         data="sparse n=200 p=500 K=2",
                         fit_time_s=t, metric=f"ARI={ari:.2f} TP={tp} FP={fp} FN={fn}"))
    if out_dir is not None:
        try:
            import matplotlib

            matplotlib.use("Agg")
        except ImportError:  # pragma: no cover
            return rows
        os.makedirs(out_dir, exist_ok=True)
        plot_path_and_gates(path, m, X, y, os.path.join(out_dir, "moe_path_gates.png"))
    return rows
