"""One way to run independent jobs: :mod:`joblib`, with a tqdm progress bar.

Every ``n_jobs`` loop of mixstat (regularisation paths, restarts, bootstrap
replicates, resampling) goes through :func:`parallel_map`, so that

>>> import joblib                                          # doctest: +SKIP
>>> with joblib.parallel_backend("dask"):                  # doctest: +SKIP
...     est.fit(X, y)   # the loop runs on a Dask cluster

works without code changes (and likewise Ray's joblib backend).
"""

from __future__ import annotations

from joblib import Parallel, delayed

from .._config import config_context, get_config

__all__ = ["parallel_map"]


def parallel_map(func, iterable, n_jobs=None, verbose=0, desc=None, total=None):
    """``[func(item) for item in iterable]`` through joblib, in order.

    Parameters
    ----------
    func : callable
    iterable : iterable
    n_jobs : int or None
        As in joblib (None means 1 unless inside a ``joblib.parallel_config``
        / ``parallel_backend`` context, which then decides).
    verbose : int
        A tqdm bar is shown when ``verbose`` > 0 (and the ``show_progress``
        configuration is on).
    desc : str, optional
        Label of the progress bar.
    total : int, optional
        Number of items, for the bar when ``iterable`` has no length.

    Returns
    -------
    list
    """
    items = list(iterable)
    config = get_config()
    show = bool(verbose) and config["show_progress"]
    # the configuration is thread-local: carry the caller's into the workers
    # (threads, loky processes, Dask workers), as scikit-learn does for its own
    task = _WithConfig(func, config, _sklearn_config())
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    gen = parallel(delayed(task)(item) for item in items)
    if show:
        from tqdm.auto import tqdm

        gen = tqdm(gen, total=total or len(items), desc=desc)
    return list(gen)


def _sklearn_config():
    from sklearn import get_config as sk_get_config

    return sk_get_config()


class _WithConfig:
    """``func`` run under the mixstat (and scikit-learn) configuration of the
    caller; picklable when ``func`` is."""

    def __init__(self, func, config, sk_config):
        self.func = func
        self.config = config
        self.sk_config = sk_config

    def __call__(self, item):
        from sklearn import config_context as sk_config_context

        with config_context(**self.config), sk_config_context(**self.sk_config):
            return self.func(item)
