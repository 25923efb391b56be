"""Families of parametric ODEs for MixER (environments labelled by family).

Every environment is one parameter setting of one ODE family; each family
has a grid of parameter values (the training grid, or a quarter-step-shifted
grid for adaptation) and trajectories from random initial conditions,
integrated with :func:`scipy.integrate.solve_ivp` (RK45, rtol 1e-6,
atol 1e-8).

Families (state dimension; parameters varied; reference grid):

- ``'lotka_volterra'`` (2): :math:`\\dot x = \\alpha x - \\beta x y`,
  :math:`\\dot y = \\delta x y - \\gamma y`, :math:`\\alpha = \\gamma = 0.5`,
  :math:`\\beta, \\delta` on a grid over [0.5, 1.0] (3 x 3 = {0.5, 0.75, 1.0}^2
  for 9 environments, as in CoDA); initial states U[1, 2]^2;
  t = 0, 0.5, ..., 9.5.
- ``'glycolytic'`` (7): the glycolytic oscillator of Daniels & Nemenman
  (2015) as used by CoDA; :math:`k_1` over [80, 100], :math:`K_1` over
  [0.5, 1]; t = 0, 0.05, ..., 0.95.
- ``'selkov'`` (2): :math:`\\dot x = -x + a y + x^2 y`,
  :math:`\\dot y = b - a y - x^2 y`, a = 0.1, b over [-1, 1]; t = 0, 4, ..., 40.
- ODEBench 2-D systems (d'Ascoli et al. 2024, ODEFormer), parameters on a
  grid over [0.9, 1.1] x reference, rounded to 3 significant digits; initial states
  in the bounding box of the two reference initial conditions; 20 points on
  [0, T): ``'harmonic'`` (id 24), ``'damped_harmonic'`` (25), ``'pendulum'``
  (28), ``'damped_double_well'`` (32), ``'van_der_pol'`` (37), ``'duffing'`` (40).

Several families together must share the state dimension and the time grid
(default for several families: t = 0, 0.5, ..., 9.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import product

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_ode_families", "ODE_FAMILIES"]


def _lv(t, y, alpha, beta, gamma, delta):
    return [alpha * y[0] - beta * y[0] * y[1], delta * y[0] * y[1] - gamma * y[1]]


def _glyco(t, s, k1, K1, J0=2.5, k2=6.0, k3=16.0, k4=100.0, k5=1.28, k6=12.0, q=4.0,
           N=1.0, A=4.0, kappa=13.0, psi=0.1, k=1.8):
    s1, s2, s3, s4, s5, s6, s7 = s
    v1 = k1 * s1 * s6 / (1.0 + (s6 / K1) ** q)
    v2 = k2 * s2 * (N - s5)
    v3 = k3 * s3 * (A - s6)
    v4 = k4 * s4 * s5
    v6 = k6 * s2 * s5
    return [J0 - v1, 2 * v1 - v2 - v6, v2 - v3, v3 - v4 - kappa * (s4 - s7),
            v2 - v4 - v6, -2 * v1 + 2 * v3 - k5 * s6, psi * kappa * (s4 - s7) - k * s7]


def _selkov(t, y, a, b):
    return [-y[0] + a * y[1] + y[0] ** 2 * y[1], b - a * y[1] - y[0] ** 2 * y[1]]


def _harmonic(t, y, c0):
    return [y[1], -c0 * y[0]]


def _damped_harmonic(t, y, c0, c1):
    return [y[1], -c0 * y[0] - c1 * y[1]]


def _pendulum(t, y, c0):
    return [y[1], -c0 * math.sin(y[0])]


def _double_well(t, y, c0):
    return [y[1], -c0 * y[1] - y[0] ** 3 + y[0]]


def _vdp(t, y, c0):
    return [y[1], -c0 * y[1] * (y[0] ** 2 - 1) - y[0]]


def _duffing(t, y, c0):
    return [y[1], c0 * y[1] * (1 - y[0] ** 2) - y[0]]


@dataclass(frozen=True)
class _Family:
    rhs: object
    dim: int
    varied: dict  # name -> (low, high) of the training grid
    fixed: dict = field(default_factory=dict)
    ic_low: tuple = ()
    ic_high: tuple = ()
    t: tuple = ()  # (start, stop, step)
    odebench: bool = False


def _odebench(rhs, params, ics, horizon):
    ics = np.asarray(ics, dtype=float)
    step = horizon / 100 * 5
    return _Family(rhs, 2, {k: (0.9 * v, 1.1 * v) for k, v in params.items()},
                   ic_low=tuple(ics.min(0)), ic_high=tuple(ics.max(0)),
                   t=(0.0, horizon, step), odebench=True)


ODE_FAMILIES = {
    "lotka_volterra": _Family(_lv, 2, {"beta": (0.5, 1.0), "delta": (0.5, 1.0)},
                              {"alpha": 0.5, "gamma": 0.5}, (1.0, 1.0), (2.0, 2.0),
                              (0.0, 10.0, 0.5)),
    "glycolytic": _Family(_glyco, 7, {"k1": (100.0, 80.0), "K1": (1.0, 0.5)}, {},
                          (0.15, 0.19, 0.04, 0.1, 0.08, 0.14, 0.05),
                          (1.6, 2.16, 0.2, 0.35, 0.3, 2.67, 0.1), (0.0, 1.0, 0.05)),
    "selkov": _Family(_selkov, 2, {"b": (-1.0, 1.0)}, {"a": 0.1}, (0.0, 0.0), (3.0, 3.0),
                      (0.0, 41.0, 4.0)),
    "harmonic": _odebench(_harmonic, {"c0": 2.1}, [[0.4, -0.03], [0.0, 0.2]], 10.0),
    "damped_harmonic": _odebench(_damped_harmonic, {"c0": 4.5, "c1": 0.43},
                                 [[0.12, 0.043], [0.0, -0.3]], 8.0),
    "pendulum": _odebench(_pendulum, {"c0": 0.9}, [[-1.9, 0.0], [0.3, 0.8]], 15.0),
    "damped_double_well": _odebench(_double_well, {"c0": 0.18},
                                    [[-1.8, -1.8], [-2.8, 1.0]], 5.0),
    "van_der_pol": _odebench(_vdp, {"c0": 0.43}, [[2.2, 0.0], [0.1, 3.2]], 15.0),
    "duffing": _odebench(_duffing, {"c0": 0.886}, [[0.63, -0.03], [0.2, 0.2]], 10.0),
}


def _grid(fam, n_envs, split):
    names = list(fam.varied)
    m = max(1, math.ceil(n_envs ** (1.0 / len(names)) - 1e-9))
    axes = []
    for name in names:
        lo, hi = fam.varied[name]
        vals = np.linspace(lo, hi, m) if m > 1 else np.array([(lo + hi) / 2])
        if split == "adapt":  # a quarter step off the grid: LV gives {0.625, 1.125}
            step = (hi - lo) / (m - 1) if m > 1 else (hi - lo) / 2
            vals = vals + step / 4
        if fam.odebench:  # 3 significant digits (2 decimals would merge settings)
            vals = np.array([float(f"{v:.3g}") for v in vals])
        axes.append([float(v) for v in vals])
    combos = list(product(*axes))
    if len(combos) > n_envs:  # spread the n_envs chosen settings over the grid
        idx = np.unique(np.round(np.linspace(0, len(combos) - 1, n_envs)).astype(int))
        combos = [combos[i] for i in idx]
    return [dict(zip(names, c, strict=True)) for c in combos]


def make_ode_families(families=("harmonic", "damped_harmonic", "pendulum", "damped_double_well"),
                      n_envs_per_family=8, n_trajectories=4, *, t=None, split="train",
                      noise=0.0, random_state=None):
    """Trajectories of parametric ODE families, one environment per parameter setting.

    Parameters
    ----------
    families : sequence of str
        Keys of :data:`ODE_FAMILIES` (see the module docstring). Several families
        must have the same state dimension.
    n_envs_per_family : int, default=8
    n_trajectories : int, default=4
        Trajectories (initial conditions) per environment. Initial conditions are
        shared by the environments of a family (as in the CoDA data sets).
    t : array-like, optional
        Time grid, starting at the initial time. Default: the family's own grid
        for one family, ``0, 0.5, ..., 9.5`` for several.
    split : {'train', 'adapt'}, default='train'
        'adapt' uses the grid shifted by a quarter step (unseen parameter
        values; for Lotka-Volterra with 4 environments, CoDA's {0.625, 1.125}^2).
        Use another ``random_state`` for test trajectories of the same
        environments.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the observations.
    random_state : int, RandomState or None

    Returns
    -------
    Bunch with
        ``trajectories`` (n, n_t, d), ``t`` (n_t,), ``envs`` (n,) environment id
        of each trajectory, ``env_family`` (n_envs,) family index of each
        environment, ``family`` (n,) family index of each trajectory,
        ``family_names``, ``env_params`` (list of dicts).
    """
    from scipy.integrate import solve_ivp

    if isinstance(families, str):
        families = (families,)
    families = list(families)
    if not families:
        raise ValueError("families is empty.")
    unknown = [f for f in families if f not in ODE_FAMILIES]
    if unknown:
        raise ValueError(f"Unknown families {unknown}; choose from {sorted(ODE_FAMILIES)}.")
    dims = {ODE_FAMILIES[f].dim for f in families}
    if len(dims) > 1:
        raise ValueError(
            f"Families {families} have different state dimensions {sorted(dims)}; "
            "they cannot share one model."
        )
    if int(n_envs_per_family) < 1 or int(n_trajectories) < 1:
        raise ValueError("n_envs_per_family and n_trajectories must be >= 1.")
    if split not in ("train", "adapt"):
        raise ValueError(f"split must be 'train' or 'adapt', got {split!r}")
    if t is None:
        start, stop, step = ODE_FAMILIES[families[0]].t if len(families) == 1 else (0, 10, 0.5)
        t = np.arange(start, stop - 1e-9, step)
    t = np.asarray(t, dtype=float)
    if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError("t must be a 1-D increasing grid with at least 2 points.")
    rng = check_random_state(random_state)
    trajs, envs, fam_of_traj, env_family, env_params = [], [], [], [], []
    env = 0
    for fi, name in enumerate(families):
        fam = ODE_FAMILIES[name]
        lo, hi = np.asarray(fam.ic_low), np.asarray(fam.ic_high)
        ics = lo + (hi - lo) * rng.uniform(size=(n_trajectories, fam.dim))
        for params in _grid(fam, int(n_envs_per_family), split):
            args = {**fam.fixed, **params}
            for y0 in ics:
                sol = solve_ivp(lambda s, y, a=args, f=fam.rhs: f(s, y, **a), (t[0], t[-1]), y0,
                                t_eval=t, rtol=1e-6, atol=1e-8)
                if not sol.success or sol.y.shape[1] != t.size or not np.isfinite(sol.y).all():
                    raise RuntimeError(f"Integration failed for {name} with {args}: {sol.message}")
                trajs.append(sol.y.T)
                envs.append(env)
                fam_of_traj.append(fi)
            env_family.append(fi)
            env_params.append({"family": name, **args})
            env += 1
    X = np.stack(trajs)
    if noise > 0:
        X = X + noise * rng.standard_normal(X.shape)
    return Bunch(trajectories=X, t=t, envs=np.asarray(envs), family=np.asarray(fam_of_traj),
                 env_family=np.asarray(env_family), family_names=list(families),
                 env_params=env_params)
