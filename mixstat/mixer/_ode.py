r"""MixERODE: a scikit-learn-style estimator around :class:`mixstat.nn.MixERLayer`."""

from __future__ import annotations

import numbers
import time

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._validation import Interval, StrOptions, _fit_context, check_random_state
from ..utils._summary import ModelSummary, SummaryMixin

__all__ = ["MixERODE", "routing_purity"]


def routing_purity(routing, labels):
    """Purity of a routing against reference labels.

    :math:`\\frac1E \\sum_k \\max_f |\\{e : k_e = k, \\ell_e = f\\}|`: the share of
    environments that belong to the majority family of the expert they are
    routed to (1 when every expert receives a single family; 1/F for F
    equal families all sent to one expert).

    Parameters
    ----------
    routing : array-like of shape (n_envs,)
        Expert of each environment.
    labels : array-like of shape (n_envs,)
        Reference label (family) of each environment.
    """
    r = np.asarray(routing)
    lab = np.asarray(labels)
    if r.shape != lab.shape:
        raise ValueError(f"routing and labels shapes differ: {r.shape} vs {lab.shape}")
    total = 0
    for k in np.unique(r):
        _, counts = np.unique(lab[r == k], return_counts=True)
        total += counts.max()
    return total / r.size


def _check_trajectories(trajectories, t, envs, name="trajectories"):
    """Validate (trajectories, t, envs) and return float arrays."""
    if isinstance(trajectories, list | tuple):
        if len(trajectories) == 0:
            raise ValueError(f"{name} is empty.")
        shapes = {np.shape(a) for a in trajectories}
        if len(shapes) > 1:
            raise ValueError(
                f"All trajectories must have the same length and state dimension; got shapes "
                f"{sorted(shapes)}. Resample them onto one time grid t."
            )
    X = np.asarray(trajectories, dtype=np.float64)
    if X.ndim == 2:
        X = X[None]
    if X.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_trajectories, n_times, state_dim), got {X.shape}"
        )
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinity ({int((~np.isfinite(X)).sum())} values).")
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"t must be a 1-D time grid with at least 2 points, got shape {t.shape}")
    if not np.isfinite(t).all() or np.any(np.diff(t) <= 0):
        raise ValueError("t must be finite and strictly increasing.")
    if t.size != X.shape[1]:
        raise ValueError(
            f"Trajectory length {X.shape[1]} does not match len(t)={t.size}."
        )
    envs = np.asarray(envs)
    if envs.ndim == 0:
        envs = np.full(X.shape[0], envs.item())
    if envs.shape != (X.shape[0],):
        raise ValueError(
            f"envs must have one label per trajectory ({X.shape[0]}), got shape {envs.shape}"
        )
    return X, t, envs


class MixERODE(SummaryMixin, BaseEstimator):
    r"""Mixture of neural-ODE experts with MixER gating (Nzoyem, Barton & Deakin 2025).

    Every environment :math:`e` gets a context :math:`\xi_e` (zeros at start);
    its trajectories follow :math:`\dot x = f_{k_e}(x; \xi_e)` with
    :math:`k_e = \arg\max_k (W^\top[\xi_e; 1])_k` (see
    :class:`mixstat.nn.MixERLayer`). Training is the reference's proximal
    alternating minimisation: each outer step snapshots
    :math:`(\theta_{old}, \xi_{old})`, then runs ``n_inner[0]`` Adam steps on the
    contexts for :math:`L + \frac{\beta_\xi}{2}\|\xi - \xi_{old}\|^2/n_\xi` and
    ``n_inner[1]`` steps on the expert weights for
    :math:`L + \frac{\beta_\theta}{2}\|\theta - \theta_{old}\|^2/n_\theta`
    (squared norms divided by the number of entries, as in the reference code), where
    :math:`L` is the mean over environments of the per-environment trajectory
    MSE (RK4 from the first state). With ``gate='kmeans_lstsq'`` the gate is
    replaced after every ``gate_every``-th inner step of both loops by the
    closed-form update (K-means on the contexts, median expert loss per
    cluster, one-to-one matching, least squares). ``adapt`` fits new
    contexts only, with everything else frozen.

    Parameters
    ----------
    n_experts : int, default=4
    context_dim : int, default=2
        Context size per expert (full context ``n_experts * context_dim``).
    expert : {'coda', 'geps', 'ncf'}, default='coda'
    hidden : int, default=64
    depth : int, default=3
    split_context : bool, default=True
    gate : {'kmeans_lstsq', 'softmax_gd', 'fixed'}, default='kmeans_lstsq'
        'softmax_gd' is the gradient-trained Switch-style baseline (vector
        field scaled by the top-1 gate value); 'fixed' keeps the random
        initial gate (the reference code's ``gradient_descent`` semantics).
    n_outer : int, default=100
    n_inner : tuple of int, default=(12, 12)
    proximal : tuple of float, default=(10.0, 10.0)
        :math:`(\beta_\xi, \beta_\theta)`.
    gate_every : int, default=5
    distance : {'l1-mean', 'euclidean'}, default='l1-mean'
    match : {'greedy', 'hungarian'}, default='greedy'
    kmeans_max_iter : int, default=20
    kmeans_tol : float, default=1e-4
    kmeans_init : {'uniform', 'k-means++'}, default='uniform'
        K-means start when there are no previous centres: the reference's
        :math:`U(\pm 10^{-3})`, or k-means++ seeding (our option: the update
        then does not wait for the contexts to straddle the tiny initial
        centres).
    lstsq_noise : float, default=1e-4
    lr : tuple of float, default=(1e-3, 1e-3)
        Adam learning rates (contexts, model). The model rate is multiplied by
        0.4 at 1/3 and 2/3 of the outer steps, as in the reference.
    substeps : int, default=1
        RK4 steps per interval of ``t``.
    curriculum : float in (0, 1] or None, default=None
        Train on the first ``curriculum`` fraction of the time points at the
        first outer step, growing linearly to the whole trajectory at half of
        the outer steps (losses of the gate update too). None: always the
        whole trajectory (the reference). Long rollouts of oscillators are
        hard to fit from scratch; the reference eases this with random
        sub-windows, this is our simpler substitute.
    adapt_steps : int, default=500
    adapt_lr : float, default=1e-2
    random_state : int or None, default=None
    n_threads : int, default=1
        torch threads during fit (one thread is fastest for these sizes).
    verbose : int, default=0
    device : str or None, default=None
        The torch device to train on (``'cpu'``, ``'cuda'``, ``'cuda:1'``,
        ``'mps'``...). None: the device of ``mixstat.config_context(device=...)``
        when one is set, else the CPU (these small float32 ODE models are
        launch-bound on a GPU unless there are many environments). The
        initial weights are drawn on the CPU, so a seed gives the same start on
        every device.

    Attributes
    ----------
    envs_ : ndarray
        Training environment labels (row order of ``contexts_``).
    contexts_ : ndarray of shape (n_envs, n_experts * context_dim)
    gate_coef_ : ndarray of shape (n_experts * context_dim + 1, n_experts)
    routing_ : ndarray of shape (n_envs,)
        Expert of every training environment.
    cluster_centers_ : ndarray or None
    n_gate_updates_ : int
    env_loss_ : ndarray of shape (n_envs,)
        Mean squared error of the fitted model on each training environment's
        full trajectories (after the last step).
    backend_ : str
        ``'torch'`` (float32).
    device_ : str
        The torch device the model was trained on (``module_`` is kept on the
        CPU between calls; :meth:`adapt` and :meth:`predict` run on this device).
    n_iter_ : int
        Outer steps run.
    history_ : dict of lists
        Per outer step: ``loss``, ``routing`` (expert of each environment),
        ``n_gate_updates``, ``time``.
    adapted_envs_, adapted_contexts_ : after :meth:`adapt`.
    module_ : MixERLayer

    References
    ----------
    Nzoyem, Barton & Deakin (2025), arXiv:2502.05335. Kirchmeyer et al. (2022),
    "Generalizing to new physical systems via context-informed dynamics model"
    (CoDA), ICML.
    """

    _parameter_constraints: dict = {
        "n_experts": [Interval(numbers.Integral, 1, None, closed="left")],
        "context_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "expert": [StrOptions({"coda", "geps", "ncf"})],
        "hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "split_context": ["boolean"],
        "gate": [StrOptions({"kmeans_lstsq", "softmax_gd", "fixed"})],
        "n_outer": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_inner": [tuple, list],
        "proximal": [tuple, list],
        "gate_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "distance": [StrOptions({"l1-mean", "euclidean"})],
        "match": [StrOptions({"greedy", "hungarian"})],
        "kmeans_max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "kmeans_tol": [Interval(numbers.Real, 0, None, closed="left")],
        "kmeans_init": [StrOptions({"uniform", "k-means++"})],
        "lstsq_noise": [Interval(numbers.Real, 0, None, closed="left")],
        "lr": [tuple, list],
        "substeps": [Interval(numbers.Integral, 1, None, closed="left")],
        "curriculum": [None, Interval(numbers.Real, 0, 1, closed="right")],
        "adapt_steps": [Interval(numbers.Integral, 0, None, closed="left")],
        "adapt_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
        "device": [None, str],
    }

    def __init__(self, n_experts=4, context_dim=2, expert="coda", hidden=64, depth=3,
                 split_context=True, gate="kmeans_lstsq", n_outer=100, n_inner=(12, 12),
                 proximal=(10.0, 10.0), gate_every=5, distance="l1-mean", match="greedy",
                 kmeans_max_iter=20, kmeans_tol=1e-4, kmeans_init="uniform", lstsq_noise=1e-4,
                 lr=(1e-3, 1e-3),
                 substeps=1, curriculum=None, adapt_steps=500, adapt_lr=1e-2, random_state=None, n_threads=1,
                 verbose=0, device=None):
        self.n_experts = n_experts
        self.context_dim = context_dim
        self.expert = expert
        self.hidden = hidden
        self.depth = depth
        self.split_context = split_context
        self.gate = gate
        self.n_outer = n_outer
        self.n_inner = n_inner
        self.proximal = proximal
        self.gate_every = gate_every
        self.distance = distance
        self.match = match
        self.kmeans_max_iter = kmeans_max_iter
        self.kmeans_tol = kmeans_tol
        self.kmeans_init = kmeans_init
        self.lstsq_noise = lstsq_noise
        self.lr = lr
        self.substeps = substeps
        self.curriculum = curriculum
        self.adapt_steps = adapt_steps
        self.adapt_lr = adapt_lr
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        self.device = device

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _pair(v, name):
        v = tuple(v)
        if len(v) != 2:
            raise ValueError(f"{name} must be a pair (contexts, model), got {v!r}")
        return v

    def _torch_device(self):
        """The device of ``device`` (None: ``config_context(device=...)`` when set
        to a device, else the CPU), checked against what torch sees."""
        import torch

        from .._config import get_config

        dev = self.device
        if dev is None:
            cfg = get_config().get("device")
            dev = cfg if cfg not in (None, "auto") else "cpu"
        try:
            dev = torch.device(dev)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device={self.device!r} is not a torch device: {exc}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={str(dev)!r} was asked for but torch sees no CUDA device")
        return dev

    def _loss(self, torch, pred, target, env_idx, n_envs):
        err = ((pred - target) ** 2).mean(dim=(1, 2))
        tot = torch.zeros(n_envs, dtype=err.dtype, device=err.device).index_add(0, env_idx, err)
        cnt = torch.bincount(env_idx, minlength=n_envs).to(err.dtype)
        present = cnt > 0
        return (tot[present] / cnt[present]).mean()

    def _gate_step(self, layer, X, t, env_idx, rng):
        losses = layer.expert_losses(X, t, env_idx, substeps=self.substeps)
        layer.gate_update(losses, distance=self.distance, match=self.match,
                          noise=self.lstsq_noise, max_iter=self.kmeans_max_iter,
                          tol=self.kmeans_tol, random_state=rng, init=self.kmeans_init)

    # --------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, trajectories, t, envs):
        """Train experts, contexts and gate on the environments' trajectories.

        Parameters
        ----------
        trajectories : array-like of shape (n_trajectories, n_times, state_dim)
            Or a list of (n_times, state_dim) arrays of equal shape.
        t : array-like of shape (n_times,)
        envs : array-like of shape (n_trajectories,)
            Environment label of each trajectory.

        Returns
        -------
        self
        """
        from .._backend import has_module

        if not has_module("torch"):
            raise ImportError("MixERODE needs PyTorch: pip install 'mixstat[torch]'")
        import torch

        from ..nn.mixer import MixERLayer

        X, t, envs = _check_trajectories(trajectories, t, envs)
        n_inner = tuple(int(v) for v in self._pair(self.n_inner, "n_inner"))
        betas = tuple(float(v) for v in self._pair(self.proximal, "proximal"))
        lrs = tuple(float(v) for v in self._pair(self.lr, "lr"))
        if min(n_inner) < 0 or min(betas) < 0 or min(lrs) <= 0:
            raise ValueError("n_inner and proximal must be >= 0 and lr > 0.")
        self.envs_, env_idx = np.unique(envs, return_inverse=True)
        E = self.envs_.size
        if E < 2:
            raise ValueError(
                f"MixERODE needs at least 2 environments, got {E}: the gate routes environments."
            )
        if E < self.n_experts:
            raise ValueError(
                f"Fewer environments ({E}) than experts (n_experts={self.n_experts}): "
                "K-means on the contexts needs at least one environment per expert."
            )
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(2**31 - 1))
        dev = self._torch_device()
        n_threads_before = torch.get_num_threads()
        torch.set_num_threads(self.n_threads)
        try:
            torch.manual_seed(seed)
            np_rng = np.random.default_rng(seed)
            dtype = torch.float32
            Xt = torch.as_tensor(X, dtype=dtype, device=dev)
            tt = torch.as_tensor(t, dtype=dtype, device=dev)
            ei = torch.as_tensor(env_idx, dtype=torch.long, device=dev)
            # built on the CPU (the same initial weights on every device), then moved
            with torch.device("cpu"):
                layer = MixERLayer(self.n_experts, E, X.shape[2], self.context_dim,
                                   self.hidden, self.depth, self.expert, self.split_context,
                                   self.gate)
            layer.to(dev)
            model_params = [p for n, p in layer.named_parameters() if n != "contexts"]
            n_theta = sum(p.numel() for p in model_params)
            opt_ctx = torch.optim.Adam([layer.contexts], lr=lrs[0])
            opt_model = torch.optim.Adam(model_params, lr=lrs[1])
            history = {"loss": [], "routing": [], "n_gate_updates": [], "time": []}
            lstsq = self.gate == "kmeans_lstsq"
            t0 = time.perf_counter()
            for outer in range(self.n_outer):
                if outer in (self.n_outer // 3, 2 * self.n_outer // 3) and outer > 0:
                    for g in opt_model.param_groups:
                        g["lr"] *= 0.4
                n_t = t.size
                if self.curriculum is not None:
                    frac = self.curriculum + (1 - self.curriculum) * min(
                        1.0, outer / max(1.0, 0.5 * self.n_outer))
                    n_t = max(2, min(t.size, int(np.ceil(frac * t.size))))
                Xw, tw = Xt[:, :n_t], tt[:n_t]
                ctx_old = layer.contexts.detach().clone()
                theta_old = [p.detach().clone() for p in model_params]
                loss_val = np.nan
                for which, (opt, nsteps) in enumerate(((opt_ctx, n_inner[0]),
                                                       (opt_model, n_inner[1]))):
                    for step in range(nsteps):
                        opt.zero_grad()
                        pred = layer(Xw[:, 0], tw, ei, substeps=self.substeps)
                        loss = self._loss(torch, pred, Xw, ei, E)
                        loss_val = float(loss.detach())
                        # the reference's normalised squared norm: mean over entries
                        if which == 0:
                            prox = ((layer.contexts - ctx_old) ** 2).mean()
                        else:
                            prox = sum(((p - q) ** 2).sum() for p, q in
                                       zip(model_params, theta_old, strict=True)) / n_theta
                        (loss + 0.5 * betas[which] * prox).backward()
                        opt.step()
                        if lstsq and step % self.gate_every == 0:
                            self._gate_step(layer, Xw, tw, ei, np_rng)
                with torch.no_grad():
                    routing = layer.route(layer.contexts).cpu().numpy().copy()
                history["loss"].append(loss_val)
                history["routing"].append(routing)
                history["n_gate_updates"].append(layer.n_gate_updates)
                history["time"].append(time.perf_counter() - t0)
                if self.verbose and (outer % max(1, self.n_outer // 10) == 0
                                     or outer == self.n_outer - 1):
                    print(f"[MixERODE] outer {outer + 1}/{self.n_outer} loss {loss_val:.4g} "
                          f"experts used {np.unique(routing).size} gate updates "
                          f"{layer.n_gate_updates}", flush=True)
                if not np.isfinite(loss_val):
                    raise FloatingPointError(
                        f"Training diverged (loss {loss_val}) at outer step {outer + 1}; "
                        "lower lr or increase substeps."
                    )
            with torch.no_grad():
                routing_ = layer.route(layer.contexts).cpu().numpy().copy()
                if self.n_outer > 0:
                    pred = layer(Xt[:, 0], tt, ei, substeps=self.substeps)
                    err = ((pred - Xt) ** 2).mean(dim=(1, 2))
                    tot = torch.zeros(E, dtype=err.dtype, device=dev).index_add(0, ei, err)
                    cnt = torch.bincount(ei, minlength=E).to(err.dtype)
                    env_loss = (tot / cnt).cpu().numpy().astype(np.float64)
                else:
                    env_loss = np.full(E, np.nan)
        finally:
            torch.set_num_threads(n_threads_before)
        layer.to("cpu")  # fitted state on the host: pickling needs no GPU
        if layer._centers is not None:
            layer._centers = layer._centers.cpu() if hasattr(layer._centers, "cpu") \
                else layer._centers
        self.module_ = layer
        self.history_ = history
        self.n_iter_ = self.n_outer
        self.n_gate_updates_ = layer.n_gate_updates
        self.contexts_ = layer.contexts.detach().numpy().copy()
        self.gate_coef_ = layer.gate_weight.detach().numpy().copy()
        self.cluster_centers_ = None if layer._centers is None else \
            np.asarray(layer._centers).copy()
        self.routing_ = routing_
        self.env_loss_ = env_loss
        self.device_ = str(dev)
        self.backend_ = "torch"
        self.n_features_in_ = X.shape[2]
        self.adapted_envs_ = np.empty(0, dtype=self.envs_.dtype)
        self.adapted_contexts_ = np.empty((0, self.contexts_.shape[1]))
        return self

    # ------------------------------------------------------------------- adapt
    _summary_fitted_attribute = "module_"

    def _summary(self):
        K, E = self.n_experts, self.envs_.size
        load = np.bincount(self.routing_, minlength=K)
        losses = np.asarray(self.history_["loss"], dtype=float)
        info = {
            "Model": "MixERODE",
            "Expert": self.expert,
            "Experts": K,
            "Environments": E,
            "Gate": self.gate,
            "Gate updates": self.n_gate_updates_,
            "Outer steps": self.n_iter_,
            "Final training loss": float(losses[-1]) if losses.size else np.nan,
            "Best training loss": float(np.nanmin(losses)) if losses.size else np.nan,
            "Backend": f"{self.backend_} ({getattr(self, 'device_', 'cpu')})",
        }
        env_rows = [str(e) for e in self.envs_]
        tables = [
            ("Routing per environment", env_rows, ["expert", "MSE"],
             [[int(self.routing_[i]), float(self.env_loss_[i])] for i in range(E)]),
            ("Load per expert", [f"expert {k}" for k in range(K)],
             ["environments", "mean env MSE"],
             [[int(load[k]), float(np.mean(self.env_loss_[self.routing_ == k]))
               if load[k] else np.nan] for k in range(K)]),
        ]
        notes = ["Training loss: mean over environments of the trajectories' mean squared "
                 "error (the last value of history_['loss'], on the curriculum's time "
                 "window); the per-environment MSE is on the full time grid."]
        if np.any(load == 0):
            notes.append(f"{int(np.sum(load == 0))} expert(s) receive no environment.")
        return ModelSummary("MixERODE: MixER mixture of neural-ODE experts", info, tables,
                            notes)

    def adapt(self, trajectories, t, envs, n_steps=None):
        """Fit contexts of new environments, everything else frozen.

        New contexts start at zero and are trained with Adam (``adapt_lr``)
        for ``n_steps`` (default ``adapt_steps``) on the trajectory MSE; the
        fixed gate routes them. They are stored (``adapted_envs_``,
        ``adapted_contexts_``) for :meth:`predict`.

        Returns
        -------
        ndarray of shape (n_new_envs, n_experts * context_dim)
        """
        import torch

        check_is_fitted(self)
        X, t, envs = _check_trajectories(trajectories, t, envs)
        if X.shape[2] != self.n_features_in_:
            raise ValueError(
                f"State dimension {X.shape[2]} differs from the fitted {self.n_features_in_}."
            )
        new_envs, env_idx = np.unique(envs, return_inverse=True)
        clash = np.intersect1d(new_envs, self.envs_)
        if clash.size:
            raise ValueError(f"Environments {clash.tolist()} were seen in fit; adapt new ones.")
        n_steps = self.adapt_steps if n_steps is None else int(n_steps)
        layer = self.module_
        dev = torch.device(getattr(self, "device_", "cpu"))
        n_threads_before = torch.get_num_threads()
        torch.set_num_threads(self.n_threads)
        try:
            layer.to(dev)
            Xt = torch.as_tensor(X, dtype=torch.float32, device=dev)
            tt = torch.as_tensor(t, dtype=torch.float32, device=dev)
            ei = torch.as_tensor(env_idx, dtype=torch.long, device=dev)
            ctx = torch.zeros(new_envs.size, layer.contexts.shape[1], requires_grad=True,
                              device=dev)
            for p in layer.parameters():
                p.requires_grad_(False)
            opt = torch.optim.Adam([ctx], lr=self.adapt_lr)
            for _ in range(n_steps):
                opt.zero_grad()
                pred = layer(Xt[:, 0], tt, ei, contexts=ctx, substeps=self.substeps)
                loss = self._loss(torch, pred, Xt, ei, new_envs.size)
                loss.backward()
                opt.step()
        finally:
            for p in layer.parameters():
                p.requires_grad_(True)
            layer.to("cpu")
            torch.set_num_threads(n_threads_before)
        out = ctx.detach().cpu().numpy().copy()
        keep = ~np.isin(self.adapted_envs_, new_envs)
        self.adapted_envs_ = np.concatenate([self.adapted_envs_[keep], new_envs])
        self.adapted_contexts_ = np.concatenate([self.adapted_contexts_[keep], out])
        return out

    # ----------------------------------------------------------------- predict
    def _contexts_of(self, envs):
        envs = np.atleast_1d(np.asarray(envs))
        labels = np.concatenate([self.envs_, self.adapted_envs_])
        table = np.concatenate([self.contexts_, self.adapted_contexts_])
        out = np.empty((envs.size, table.shape[1]))
        for i, e in enumerate(envs):
            hit = np.flatnonzero(labels == e)
            if hit.size == 0:
                raise ValueError(f"Unknown environment {e!r}: fit or adapt it first.")
            out[i] = table[hit[-1]]
        return out

    def predict(self, x0, t, env):
        """Trajectories from initial states in environment(s) ``env``.

        Parameters
        ----------
        x0 : array-like of shape (n, state_dim) or (state_dim,)
        t : array-like of shape (n_times,)
        env : label or array-like of shape (n,)
            Environments seen in :meth:`fit` or :meth:`adapt`.

        Returns
        -------
        ndarray of shape (n, n_times, state_dim)
        """
        import torch

        check_is_fitted(self)
        x0 = np.atleast_2d(np.asarray(x0, dtype=np.float64))
        if x0.ndim != 2 or x0.shape[1] != self.n_features_in_:
            raise ValueError(f"x0 must have shape (n, {self.n_features_in_}), got {x0.shape}")
        if not np.isfinite(x0).all():
            raise ValueError("x0 contains NaN or infinity.")
        _, t, envs = _check_trajectories(np.zeros((x0.shape[0], np.size(t), x0.shape[1])), t,
                                         env)
        uniq, inv = np.unique(envs, return_inverse=True)
        dev = torch.device(getattr(self, "device_", "cpu"))
        ctx = torch.as_tensor(self._contexts_of(uniq), dtype=torch.float32, device=dev)
        try:
            self.module_.to(dev)
            with torch.no_grad():
                out = self.module_(torch.as_tensor(x0, dtype=torch.float32, device=dev),
                                   torch.as_tensor(t, dtype=torch.float32, device=dev),
                                   torch.as_tensor(inv, dtype=torch.long, device=dev),
                                   contexts=ctx, substeps=self.substeps)
        finally:
            self.module_.to("cpu")
        return out.cpu().numpy().astype(np.float64)

    def route(self, envs=None, context=None):
        """Expert of environments (labels) or of raw contexts.

        Parameters
        ----------
        envs : label or array-like, optional
            Default: the training environments (then equal to ``routing_``).
        context : array-like of shape (n, n_experts * context_dim), optional

        Returns
        -------
        ndarray of int
        """
        check_is_fitted(self)
        if context is not None:
            Z = np.atleast_2d(np.asarray(context, dtype=np.float64))
        else:
            Z = self._contexts_of(self.envs_ if envs is None else envs)
        logits = Z @ self.gate_coef_[:-1] + self.gate_coef_[-1]
        return np.argmax(logits, axis=1)

    def score(self, trajectories, t, envs):
        """Negative mean squared error of the predicted trajectories."""
        X, t, envs = _check_trajectories(trajectories, t, envs)
        pred = self.predict(X[:, 0], t, envs)
        return -float(np.mean((pred - X) ** 2))

    def routing_purity(self, labels):
        """Purity of ``routing_`` against per-environment labels (e.g. families)."""
        check_is_fitted(self)
        return routing_purity(self.routing_, labels)
