"""Maximum-likelihood training of a density module with Adam, validation-based
early stopping and divergence handling (the best model is kept)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["TrainResult", "train_density"]


@dataclass
class TrainResult:
    """What :func:`train_density` did.

    Attributes
    ----------
    n_epochs : int
    converged : bool
        Early stopping fired (validation stopped improving).
    diverged : bool
        A non-finite loss or gradient was met; training stopped and the best
        model so far was restored.
    message : str
    train_curve, valid_curve : list of float
        Mean training / validation log-likelihood per epoch.
    best_valid : float
    epoch_times : list of float
        Wall seconds per epoch (training steps only).
    """

    n_epochs: int = 0
    converged: bool = False
    diverged: bool = False
    message: str = ""
    train_curve: list = field(default_factory=list)
    valid_curve: list = field(default_factory=list)
    best_valid: float = -math.inf
    epoch_times: list = field(default_factory=list)


@torch.no_grad()
def _mean_ll(module, X, batch_size):
    module.eval()
    tot = 0.0
    for i in range(0, X.shape[0], batch_size):
        tot += float(module(X[i : i + batch_size]).sum())
    module.train()
    return tot / X.shape[0]


def train_density(
    module,
    X_train,
    X_valid=None,
    *,
    max_epochs=100,
    batch_size=256,
    learning_rate=5e-3,
    early_stopping=True,
    n_iter_no_change=10,
    tol=1e-3,
    rng=None,
    verbose=False,
):
    """Minimise the mean negative log-likelihood of ``module`` (a callable
    returning per-sample log-densities) with Adam on mini-batches.

    Early stopping watches the validation log-likelihood: an epoch improves
    when it beats the best by more than ``tol * |best|`` (squared-npcs'
    relative threshold); after ``n_iter_no_change`` epochs without
    improvement training stops. A non-finite loss stops training with
    ``diverged=True`` and restores the best parameters.
    """
    import time

    rng = np.random.default_rng(0) if rng is None else rng
    opt = torch.optim.Adam(module.parameters(), lr=learning_rate)
    n = X_train.shape[0]
    res = TrainResult()
    best_state = copy.deepcopy(module.state_dict())
    best_score = -math.inf
    bad = 0
    epochs = range(max_epochs)
    if verbose:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="epochs", leave=False)
    module.train()
    for epoch in epochs:
        t0 = time.perf_counter()
        perm = torch.as_tensor(rng.permutation(n), device=X_train.device)
        tot, ok = 0.0, True
        for i in range(0, n, batch_size):
            xb = X_train[perm[i : i + batch_size]]
            loss = -module(xb).mean()
            if not torch.isfinite(loss):
                ok = False
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()  # a non-finite gradient shows up as a non-finite loss next step
            tot -= float(loss.detach()) * xb.shape[0]
        res.epoch_times.append(time.perf_counter() - t0)
        res.n_epochs = epoch + 1
        if not ok:
            res.diverged = True
            res.message = (
                f"training diverged at epoch {epoch + 1} (non-finite loss or gradient); "
                "the best model so far was restored. Try a smaller learning_rate."
            )
            break
        res.train_curve.append(tot / n)
        score = _mean_ll(module, X_valid, batch_size) if X_valid is not None else tot / n
        res.valid_curve.append(score)
        if not math.isfinite(score):
            res.diverged = True
            res.message = (
                f"validation log-likelihood became non-finite at epoch {epoch + 1}; "
                "the best model so far was restored. Try a smaller learning_rate."
            )
            break
        if verbose:
            epochs.set_postfix(train=f"{tot / n:.4f}", valid=f"{score:.4f}")
        significant = not math.isfinite(best_score) or score > best_score + tol * abs(best_score)
        if score > best_score:
            best_score = score
            best_state = copy.deepcopy(module.state_dict())
        if significant:
            bad = 0
        else:
            bad += 1
            if early_stopping and bad >= n_iter_no_change:
                res.converged = True
                res.message = f"early stopping after {epoch + 1} epochs"
                break
    if math.isfinite(best_score) or res.diverged:
        module.load_state_dict(best_state)
    res.best_valid = best_score
    module.eval()
    return res
