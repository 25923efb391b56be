"""Global configuration of mixstat: thread-local, as in :mod:`sklearn._config`.

Keys
----
backend : {'auto', 'numpy', 'numba', 'cupy', 'torch'}, default='auto'
    Backend an estimator uses when its own ``backend`` parameter is None.
use_numba : bool or 'auto', default='auto'
    Whether the NumPy path may use the Numba kernels when Numba is installed.
device : str or None, default=None
    Device for the torch / cupy backends (``'cuda'``, ``'cuda:1'``, ``'cpu'``);
    None picks the first GPU when there is one. Since ``None`` means
    "unchanged" in :func:`set_config`, pass ``device='auto'`` to reset it.
show_progress : bool, default=True
    Whether long loops show a tqdm bar when an estimator's ``verbose`` is set.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

_BACKENDS = ("auto", "numpy", "numba", "cupy", "torch")

_global_config = {
    "backend": "auto",
    "use_numba": "auto",
    "device": None,
    "show_progress": True,
}
_threadlocal = threading.local()


def _get_threadlocal_config():
    if not hasattr(_threadlocal, "global_config"):
        _threadlocal.global_config = _global_config.copy()
    return _threadlocal.global_config


def get_config():
    """Return a copy of the current configuration (a dict)."""
    return _get_threadlocal_config().copy()


def set_config(backend=None, use_numba=None, device=None, show_progress=None):
    """Set the global configuration of mixstat (for the current thread).

    Parameters left to None are unchanged. See the module docstring for keys.
    """
    cfg = _get_threadlocal_config()
    if backend is not None:
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        cfg["backend"] = backend
    if use_numba is not None:
        if use_numba not in (True, False, "auto"):
            raise ValueError(f"use_numba must be True, False or 'auto', got {use_numba!r}")
        cfg["use_numba"] = use_numba
    if device is not None:
        cfg["device"] = None if device == "auto" else device
    if show_progress is not None:
        cfg["show_progress"] = bool(show_progress)


@contextmanager
def config_context(*, backend=None, use_numba=None, device=None, show_progress=None):
    """Context manager that sets the configuration within its block.

    Examples
    --------
    >>> from mixstat import config_context, get_config
    >>> with config_context(backend="numpy"):
    ...     get_config()["backend"]
    'numpy'
    """
    old = get_config()
    set_config(backend=backend, use_numba=use_numba, device=device,
               show_progress=show_progress)
    try:
        yield
    finally:
        _get_threadlocal_config().clear()
        _get_threadlocal_config().update(old)
