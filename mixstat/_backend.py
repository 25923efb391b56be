"""Backend detection and dispatch: the only module that knows which optional
libraries (Numba, CuPy, torch, statsmodels) are installed.

Nothing here imports an optional library at import time: detection uses
:func:`importlib.util.find_spec`, and the library is imported on first use.

Resolution of an estimator's ``backend`` parameter (in ``fit``), in order:

1. the parameter itself, when it is not None and not ``'auto'``;
2. ``mixstat.config_context(backend=...)``, when it is not ``'auto'``;
3. the namespace of the input arrays (CuPy in -> 'cupy', torch in -> 'torch');
4. ``'numba'`` when Numba is installed (and ``use_numba`` is not False);
5. ``'numpy'``.
"""

from __future__ import annotations

import functools
import glob
import importlib
import importlib.util
import os
import platform
import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._config import _BACKENDS, get_config

__all__ = [
    "Backend",
    "has_module",
    "numba_available",
    "lazy_njit",
    "resolve_backend",
    "to_numpy",
    "show_versions",
]


@functools.lru_cache(maxsize=None)
def has_module(name: str) -> bool:
    """Whether the module ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def numba_available() -> bool:
    """Whether Numba is installed and the JIT is allowed by the configuration."""
    if get_config()["use_numba"] is False:
        return False
    return has_module("numba")


def cupy_device_available() -> bool:
    """Whether CuPy is installed *and* sees a CUDA device (never raises)."""
    if not has_module("cupy"):
        return False
    try:
        import cupy

        return bool(cupy.is_available())
    except Exception:  # noqa: BLE001 - any driver error means 'no device'
        return False


def torch_cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA device."""
    if not has_module("torch"):
        return False
    import torch

    return bool(torch.cuda.is_available())


# ---------------------------------------------------------------- numba ---
class _LazyJit:
    """A function compiled by Numba on its first call, when Numba is there.

    ``kernel(...)`` runs the compiled version (or the Python one when Numba is
    absent or disabled); ``kernel.py_func`` is always the plain Python function,
    so tests can compare the two.
    """

    def __init__(self, func, options):
        self.py_func = func
        self._options = options
        self._jitted = None
        functools.update_wrapper(self, func)

    @property
    def jitted(self):
        if self._jitted is None:
            import numba

            if not _cache_files(self.py_func):
                _compile_notice()
            self._jitted = numba.njit(cache=True, **self._options)(
                _with_compiled_callees(self.py_func))
        return self._jitted

    def __call__(self, *args, **kwargs):
        if numba_available():
            return self.jitted(*args, **kwargs)
        return self.py_func(*args, **kwargs)

    def __reduce__(self):
        # pickled by reference (module + name), like a plain function, so that
        # joblib / Dask can ship code that holds a kernel
        return (_import_attribute, (self.__module__, self.__qualname__))


_NOTICE = {"shown": False}


def _compile_notice():
    """One line on stderr, once per process, when a kernel is about to be
    compiled for the first time in this environment (nothing in Numba's
    on-disk cache): the first mixture-of-experts fit then pauses while Numba
    compiles, and later processes load the machine code instead.
    ``MIXSTAT_QUIET_COMPILE=1`` silences it; ``mixstat compile`` (run by
    ``make install``) compiles everything ahead of time."""
    if _NOTICE["shown"] or os.environ.get("MIXSTAT_QUIET_COMPILE"):
        return
    _NOTICE["shown"] = True
    print("mixstat: compiling Numba kernels for this environment (once, up to a minute; "
          "later runs load them from the cache; `mixstat compile` does it ahead of time)",
          file=sys.stderr, flush=True)


def _with_compiled_callees(func):
    """``func`` with its global references to other lazy kernels bound to their
    compiled versions, so that one kernel can call another (Numba cannot type a
    :class:`_LazyJit`). ``func`` itself is left unchanged: its ``py_func``
    still calls the lazy wrappers. Numba's on-disk cache only watches the
    caller's own source file, so a cached caller whose callees' source files
    are newer than its cache index is dropped first (see
    :func:`_drop_stale_cache`)."""
    names = [name for name in func.__code__.co_names
             if isinstance(func.__globals__.get(name), _LazyJit)]
    if not names:
        return func
    _drop_stale_cache(func, [func.__globals__[name] for name in names])
    glob = dict(func.__globals__)
    for name in names:
        glob[name] = glob[name].jitted
    new = types.FunctionType(func.__code__, glob, func.__name__, func.__defaults__,
                             func.__closure__)
    new.__qualname__ = func.__qualname__
    new.__module__ = func.__module__
    new.__doc__ = func.__doc__
    return new


def _callee_sources(kernels, seen=None):
    """Source files of ``kernels`` and, recursively, of the lazy kernels they call."""
    seen = set() if seen is None else seen
    for kernel in kernels:
        func = kernel.py_func
        if func in seen:
            continue
        seen.add(func)
        yield func.__code__.co_filename
        yield from _callee_sources(
            [v for v in (func.__globals__.get(n) for n in func.__code__.co_names)
             if isinstance(v, _LazyJit)], seen)


def _cache_files(func):
    """``func``'s Numba cache files (index and data), found where Numba's own
    cache locator puts them: next to the source, or under ``NUMBA_CACHE_DIR``
    or the user-wide cache directory."""
    try:
        from numba.core.caching import FunctionCache

        cache = FunctionCache(func)
        stem = os.path.join(cache._cache_path, glob.escape(cache._impl.filename_base))
    except Exception:  # no locator applies, or Numba's internals moved
        src = func.__code__.co_filename
        module = os.path.splitext(os.path.basename(src))[0]
        stem = os.path.join(os.path.dirname(src), "__pycache__",
                            f"{module}.{func.__qualname__}-*")
    return glob.glob(stem + ".nbi") + glob.glob(stem + ".*.nbc")


def _drop_stale_cache(func, callees):
    """Remove ``func``'s Numba cache files when a callee's source file changed
    after they were written: Numba would otherwise load machine code that
    inlined the old callee."""
    cached = _cache_files(func)
    if not cached:
        return
    try:
        newest = max(os.path.getmtime(f) for f in _callee_sources(callees))
        if newest > min(os.path.getmtime(f) for f in cached):
            for f in cached:
                os.remove(f)
    except OSError:  # another process removed or rewrote them first
        pass


def _import_attribute(module, qualname):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def lazy_njit(func=None, **options):
    """Decorate a kernel to be compiled with ``numba.njit(cache=True)`` lazily.

    Never pass ``fastmath=True``: it breaks inf / NaN handling. A set such as
    ``{'nsz', 'arcp', 'contract', 'afn', 'reassoc'}`` is allowed.

    A NaN default argument is refused: a call that omits it is typed
    ``omitted(default=nan)``, and since NaN != NaN that type never equals the
    one in Numba's on-disk cache index, so every process compiled the kernel
    again (seconds each) and appended one more entry to the index.
    """
    if func is None:
        return lambda f: lazy_njit(f, **options)
    for d in func.__defaults__ or ():
        if isinstance(d, float) and d != d:
            raise ValueError(f"lazy_njit kernel {func.__qualname__} has a NaN default argument; "
                             "Numba's cache cannot match it (use a finite sentinel)")
    return _LazyJit(func, options)


# -------------------------------------------------------------- backends ---
@dataclass(frozen=True)
class Backend:
    """What an estimator runs on.

    Attributes
    ----------
    name : {'numpy', 'numba', 'cupy', 'torch'}
    xp : module
        The array namespace (array-api-compat wrapped).
    device : object or None
        The device of the torch / cupy arrays, None for NumPy.
    input_is_numpy : bool
        Whether the user's input was NumPy (then fitted attributes are stored
        as NumPy arrays whatever the backend).
    """

    name: str
    xp: Any
    device: Any = None
    input_is_numpy: bool = True

    @property
    def use_numba(self) -> bool:
        return self.name == "numba"

    def asarray(self, a, dtype=None):
        """Move ``a`` onto this backend (namespace and device)."""
        if self.name == "torch":
            import torch

            if isinstance(a, torch.Tensor):
                out = a.to(self.device)
            else:
                out = torch.as_tensor(np.asarray(a), device=self.device)
            if dtype is not None:
                out = out.to(dtype)
            return out
        if self.name == "cupy":
            import cupy

            return cupy.asarray(a, dtype=dtype)
        return np.asarray(a, dtype=dtype)


def _namespace_name(arrays) -> str | None:
    from array_api_compat import is_cupy_array, is_torch_array

    for a in arrays:
        if a is None:
            continue
        if is_torch_array(a):
            return "torch"
        if is_cupy_array(a):
            return "cupy"
    return None


def _check_requested(name: str):
    if name not in _BACKENDS:
        raise ValueError(
            f"backend must be one of {_BACKENDS} or None, got {name!r}"
        )
    if name == "numba" and not has_module("numba"):
        raise ImportError(
            "backend='numba' needs Numba, which is not installed: "
            "pip install 'mixstat[numba]'"
        )
    if name == "torch" and not has_module("torch"):
        raise ImportError(
            "backend='torch' needs PyTorch, which is not installed: "
            "pip install 'mixstat[torch]'"
        )
    if name == "cupy":
        if not has_module("cupy"):
            raise ImportError(
                "backend='cupy' needs CuPy, which is not installed: "
                "pip install 'mixstat[gpu]' (cupy-cuda12x) on a machine with a CUDA GPU"
            )
        if not cupy_device_available():
            raise ValueError(
                "backend='cupy' was asked for but CuPy sees no CUDA device "
                "(cupy.is_available() is False): use backend='numpy' or 'numba' here"
            )


def resolve_backend(backend=None, *arrays, allowed=None) -> Backend:
    """Resolve an estimator's ``backend`` parameter for the given input arrays.

    Parameters
    ----------
    backend : str or None
        The estimator's parameter.
    *arrays : arrays
        The inputs of ``fit``; their namespace decides when nothing else does.
    allowed : iterable of str, optional
        The backends the estimator supports; a request outside it raises.

    Returns
    -------
    Backend
    """
    input_ns = _namespace_name(arrays)
    name = backend if backend not in (None, "auto") else None
    if name is None:
        cfg = get_config()["backend"]
        name = cfg if cfg != "auto" else None
    if name is None and input_ns is not None:
        name = input_ns
    if name is None:
        name = "numba" if numba_available() else "numpy"
    _check_requested(name)
    if allowed is not None and name not in allowed:
        raise ValueError(
            f"backend={name!r} is not supported by this estimator; "
            f"choose one of {tuple(allowed)}"
        )
    if name == "numba" and get_config()["use_numba"] is False:
        raise ValueError("backend='numba' conflicts with config use_numba=False")

    device = None
    if name == "torch":
        import array_api_compat.torch as xp
        import torch

        dev = get_config()["device"]
        if input_ns == "torch":
            device = next(a for a in arrays if a is not None and isinstance(a, torch.Tensor)).device
        elif dev is not None:
            device = torch.device(dev)
        else:
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA device")
    elif name == "cupy":
        import array_api_compat.cupy as xp
    else:
        import array_api_compat.numpy as xp
    return Backend(name=name, xp=xp, device=device, input_is_numpy=input_ns is None)


def to_numpy(a):
    """Return ``a`` as a NumPy array (from NumPy, CuPy, torch or array-api-strict)."""
    if a is None or isinstance(a, np.ndarray):
        return a
    mod = type(a).__module__
    if mod.startswith("torch"):
        return a.detach().cpu().numpy()
    if mod.startswith("cupy"):
        return a.get()
    if hasattr(a, "__dlpack__"):
        return np.from_dlpack(a)
    return np.asarray(a)


def show_versions(file=None):
    """Print the versions of mixstat, its dependencies, and the backends found.

    Optional libraries are imported here (this is the one place that does so
    on purpose) to report their devices.
    """
    from . import __version__

    out = file or sys.stdout
    lines = [f"mixstat: {__version__}", f"python: {sys.version.split()[0]}",
             f"platform: {platform.platform()}"]
    for mod in ("numpy", "scipy", "sklearn", "array_api_compat", "joblib", "tqdm"):
        try:
            m = importlib.import_module(mod)
            lines.append(f"{mod}: {getattr(m, '__version__', '?')}")
        except ImportError:
            lines.append(f"{mod}: not installed")
    lines.append("")
    lines.append("backends:")
    lines.append("  numpy: yes (cpu)")
    if has_module("numba"):
        import numba

        jit = "disabled (NUMBA_DISABLE_JIT=1)" if os.environ.get("NUMBA_DISABLE_JIT") == "1" else "enabled"
        lines.append(f"  numba: {numba.__version__}, jit {jit}, {numba.config.NUMBA_NUM_THREADS} threads")
    else:
        lines.append("  numba: not installed (pip install 'mixstat[numba]')")
    if has_module("torch"):
        import torch

        devs = ["cpu"]
        if torch.cuda.is_available():
            devs += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
        lines.append(f"  torch: {torch.__version__}, devices: {', '.join(devs)}")
    else:
        lines.append("  torch: not installed (pip install 'mixstat[torch]')")
    if has_module("cupy"):
        if cupy_device_available():
            import cupy

            n = cupy.cuda.runtime.getDeviceCount()
            lines.append(f"  cupy: {cupy.__version__}, {n} CUDA device(s)")
        else:
            lines.append("  cupy: installed, but no CUDA device is available")
    else:
        lines.append("  cupy: not installed (pip install 'mixstat[gpu]')")
    lines.append(f"  statsmodels: {'installed' if has_module('statsmodels') else 'not installed'}")
    lines.append(f"  matplotlib: {'installed' if has_module('matplotlib') else 'not installed'}")
    print("\n".join(lines), file=out)
