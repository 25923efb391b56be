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


class _Adam:
    """Adam (Kingma & Ba, 2015; torch's defaults betas = (0.9, 0.999),
    eps = 1e-8) as ``torch.optim.Adam(fused=True)`` computes it: its fused
    kernel is called directly, once per step for the whole parameter list.

    What is left out is the per-step bookkeeping of the ``Optimizer`` class
    (hooks, regrouping the tensors), which on the small circuits trained here
    costs more than the update itself. Where the kernel does not serve (mixed
    devices or dtypes, a device without it, another torch), it is
    ``torch.optim.Adam`` itself, decided at the first step.
    """

    def __init__(self, params, lr):
        self.params = [p for p in params if p.requires_grad]
        self.lr = float(lr)
        fusable = (len({(p.device, p.dtype) for p in self.params}) == 1
                   and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in self.params))
        self._raw = None if fusable else False  # the direct kernel call: untried, works, refused
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]
        self._fallback = None

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        if self._raw is not False:
            live = [i for i, p in enumerate(self.params) if p.grad is not None]
            if not live:
                return None
            ps = [self.params[i] for i in live]
            steps = [self.steps[i] for i in live]
            try:
                torch._foreach_add_(steps, 1)
                torch._fused_adam_(
                    ps, [p.grad for p in ps], [self.exp_avg[i] for i in live], [self.exp_avg_sq[i] for i in live],
                    [], steps, lr=self.lr, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
                    amsgrad=False, maximize=False,
                )
                self._raw = True
                return None
            except (AttributeError, TypeError, RuntimeError):
                if self._raw:
                    raise
                self._raw = False  # refused at the first step: nothing was updated
        if self._fallback is None:
            self._fallback = torch.optim.Adam(self.params, lr=self.lr)
        return self._fallback.step()


def _adam(module, learning_rate):
    return _Adam(module.parameters(), learning_rate)


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
    opt = _adam(module, learning_rate)
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
            loss = module(xb).sum() * (-1.0 / xb.shape[0])  # the mean NLL (.mean() is two kernels)
            lv = float(loss.detach())
            if not math.isfinite(lv):
                ok = False
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()  # a non-finite gradient shows up as a non-finite loss next step
            tot -= lv * xb.shape[0]
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
