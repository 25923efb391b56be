"""Backend resolution, lazy Numba, conversions and show_versions."""

import io
import pickle

import numpy as np
import pytest

import mixstat._backend as B
from mixstat import config_context, show_versions
from mixstat._backend import Backend, has_module, lazy_njit, resolve_backend, to_numpy

needs_torch = pytest.mark.skipif(not has_module("torch"), reason="torch is not installed")
needs_numba = pytest.mark.skipif(not has_module("numba"), reason="numba is not installed")


def hide(monkeypatch, *names):
    """Pretend the optional libraries ``names`` are not installed."""
    real = B.has_module

    def fake(name):
        return False if name in names else real(name)

    monkeypatch.setattr(B, "has_module", fake)


# ------------------------------------------------------------ resolution ---
def test_default_is_numba_when_installed_else_numpy(monkeypatch):
    X = np.zeros((3, 2))
    be = resolve_backend(None, X)
    assert be.name == ("numba" if has_module("numba") else "numpy")
    assert be.input_is_numpy and be.device is None and be.use_numba == (be.name == "numba")
    assert resolve_backend("auto", X).name == be.name
    hide(monkeypatch, "numba")
    assert resolve_backend(None, X).name == "numpy"
    assert resolve_backend(None, X).use_numba is False


def test_order_parameter_config_input(monkeypatch):
    X = np.zeros((3, 2))
    with config_context(backend="numpy"):
        assert resolve_backend(None, X).name == "numpy"  # config beats numba
        if has_module("numba"):
            assert resolve_backend("numba", X).name == "numba"  # parameter beats config
    with config_context(use_numba=False):
        assert resolve_backend(None, X).name == "numpy"
        if has_module("numba"):
            with pytest.raises(ValueError, match="use_numba=False"):
                resolve_backend("numba", X)


@needs_torch
def test_input_namespace_then_config_then_parameter():
    import torch

    t = torch.zeros(3, 2, dtype=torch.float64)
    be = resolve_backend(None, None, t)
    assert be.name == "torch" and be.device == torch.device("cpu") and not be.input_is_numpy
    assert be.xp.__name__.endswith("torch")
    with config_context(backend="numpy"):
        assert resolve_backend(None, t).name == "numpy"  # config beats the input
        assert resolve_backend("torch", t).name == "torch"  # parameter beats config
    be = resolve_backend("torch", np.zeros(3))
    assert be.input_is_numpy and be.device.type in ("cpu", "cuda")
    moved = be.asarray(np.arange(3.0))
    assert isinstance(moved, torch.Tensor) and moved.device == be.device
    assert be.asarray(t, dtype=torch.float32).dtype == torch.float32
    with config_context(device="cpu"):
        assert resolve_backend("torch", np.zeros(3)).device == torch.device("cpu")
    if not torch.cuda.is_available():
        with config_context(device="cuda"), pytest.raises(ValueError, match="CUDA device"):
            resolve_backend("torch", np.zeros(3))


def test_cupy_without_gpu_is_a_clear_error(monkeypatch):
    if B.cupy_device_available():
        pytest.skip("a CUDA device is available here")
    with pytest.raises((ImportError, ValueError), match="CuPy") as info:
        resolve_backend("cupy", np.zeros(3))
    assert "mixstat[gpu]" in str(info.value) or "no CUDA device" in str(info.value)
    with config_context(backend="cupy"), pytest.raises((ImportError, ValueError), match="CuPy"):
        resolve_backend(None, np.zeros(3))
    # not installed -> ImportError naming the extra
    hide(monkeypatch, "cupy")
    with pytest.raises(ImportError, match=r"mixstat\[gpu\]"):
        resolve_backend("cupy", np.zeros(3))
    # installed but no device -> ValueError naming the missing device
    monkeypatch.setattr(B, "has_module", lambda name: True)
    monkeypatch.setattr(B, "cupy_device_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_backend("cupy", np.zeros(3))


@pytest.mark.parametrize("name, extra", [("numba", "numba"), ("torch", "torch")])
def test_missing_library_names_the_extra(monkeypatch, name, extra):
    hide(monkeypatch, name)
    with pytest.raises(ImportError, match=rf"pip install 'mixstat\[{extra}\]'"):
        resolve_backend(name, np.zeros(3))


def test_bad_and_disallowed_backends():
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("jax", np.zeros(3))
    with pytest.raises(ValueError, match="not supported by this estimator"):
        resolve_backend("numpy", np.zeros(3), allowed=("torch",))
    assert resolve_backend("numpy", np.zeros(3), allowed=("numpy", "numba")).name == "numpy"


def test_backend_asarray_numpy():
    be = Backend(name="numpy", xp=np)
    out = be.asarray([1, 2], dtype=np.float32)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32


# ------------------------------------------------------------- to_numpy ---
def test_to_numpy_every_namespace():
    a = np.arange(6.0).reshape(2, 3)
    assert to_numpy(a) is a and to_numpy(None) is None
    np.testing.assert_array_equal(to_numpy([[0, 1, 2], [3, 4, 5]]), a)
    if has_module("torch"):
        import torch

        t = torch.tensor(a, requires_grad=True)
        out = to_numpy(t * 2)
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out, 2 * a)
    if has_module("array_api_strict"):
        import array_api_strict as xs

        out = to_numpy(xs.asarray(a))
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out, a)


# ----------------------------------------------------------------- numba ---
@lazy_njit
def _kernel_add(x, y):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * y
    return s


@lazy_njit(boundscheck=False)
def _kernel_with_options(x):
    return x.sum()


def test_lazy_njit_py_func_and_fallback(monkeypatch):
    x = np.arange(5.0)
    assert _kernel_add.py_func(x, 2.0) == 20.0
    assert _kernel_add.__name__ == "_kernel_add" and _kernel_add.__doc__ is None
    assert _kernel_with_options(x) == 10.0
    # without Numba (or with use_numba=False) the Python function runs and
    # nothing is compiled
    fresh = lazy_njit(_kernel_add.py_func)
    with config_context(use_numba=False):
        assert fresh(x, 3.0) == 30.0
    assert fresh._jitted is None
    hide(monkeypatch, "numba")
    assert fresh(x, 1.0) == 10.0 and fresh._jitted is None


@needs_numba
def test_lazy_njit_compiles_on_first_call():
    import numba

    if numba.config.DISABLE_JIT:
        pytest.skip("NUMBA_DISABLE_JIT=1: Numba compiles nothing")
    fresh = lazy_njit(_kernel_add.py_func)
    assert fresh._jitted is None
    assert fresh(np.arange(4.0), 1.0) == 6.0
    assert isinstance(fresh._jitted, numba.core.registry.CPUDispatcher)


def test_lazy_kernel_pickles_by_reference():
    from mixstat.primitives._lasso import _enet_cd_kernel

    assert pickle.loads(pickle.dumps(_enet_cd_kernel)) is _enet_cd_kernel


# ---------------------------------------------------------- show_versions ---
def test_show_versions_lists_backends():
    buf = io.StringIO()
    show_versions(file=buf)
    out = buf.getvalue()
    for key in ("mixstat:", "numpy:", "scipy:", "sklearn:", "backends:", "numba:", "torch:",
                "cupy:", "statsmodels:"):
        assert key in out, key
    if has_module("torch"):
        assert "devices: cpu" in out
    if not B.cupy_device_available():
        assert "cupy: not installed" in out or "no CUDA device" in out


def _write_package(tmp_path, name, modules):
    """A package ``name`` under ``tmp_path`` whose modules import ``lazy_njit``;
    a module whose source starts with ``def`` gets it as decorator."""
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for mod, src in modules.items():
        head = "from mixstat._backend import lazy_njit\n"
        if src.startswith("def "):
            head += "@lazy_njit\n"
        (pkg / f"{mod}.py").write_text(head + src)
    return pkg


def _subprocess_env(tmp_path, **extra):
    """Environment of a child Python that imports packages written under
    ``tmp_path`` and mixstat, with the JIT on."""
    import os

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd()]), **extra)
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


@pytest.mark.skipif(not has_module("numba"), reason="needs numba")
@pytest.mark.parametrize("cache_dir", [False, True], ids=["beside-source", "NUMBA_CACHE_DIR"])
def test_cached_caller_follows_an_edited_callee(tmp_path, cache_dir):
    # A kernel that calls a lazy kernel of another module is cached by Numba
    # against its own file only; editing the callee must not leave the old
    # machine code in use (mixstat._backend._drop_stale_cache), wherever
    # Numba keeps its cache (beside the source, or NUMBA_CACHE_DIR as in CI).
    import subprocess
    import sys
    import time

    pkg = _write_package(tmp_path, "stalepkg", {
        "callee": "def f(x):\n    return x + 1.0\n",
        "caller": "from .callee import f\n@lazy_njit\ndef g(x):\n    return 2.0 * f(x)\n"})
    run = [sys.executable, "-c", "from stalepkg.caller import g; print(g(1.0))"]
    env = _subprocess_env(tmp_path)
    env.pop("NUMBA_CACHE_DIR", None)
    where = pkg / "__pycache__"
    if cache_dir:
        where = tmp_path / "numba_cache"
        env["NUMBA_CACHE_DIR"] = str(where)
    first = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert float(first.stdout) == 4.0
    assert list(where.rglob("caller.g-*.nbi"))  # cached where Numba puts it
    time.sleep(1.1)  # a later mtime for the edited callee
    (pkg / "callee.py").write_text((pkg / "callee.py").read_text().replace("+ 1.0", "+ 3.0"))
    second = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert float(second.stdout) == 8.0


def test_lazy_njit_refuses_a_nan_default():
    # omitted(default=nan) never equals itself, so Numba's cache index would
    # miss in every process (measured: 12 s of compilation per process for the
    # multinomial kernel, and one more index entry each time)
    def k(x, tol=np.nan):
        return x

    with pytest.raises(ValueError, match="NaN default"):
        lazy_njit(k)
    with pytest.raises(ValueError, match="NaN default"):
        lazy_njit(boundscheck=False)(k)
    assert lazy_njit(lambda x, tol=0.0: x).py_func(1.0) == 1.0


@pytest.mark.skipif(not has_module("numba"), reason="needs numba")
def test_kernel_with_omitted_default_is_loaded_from_cache(tmp_path):
    # a second process calling the kernel with its default omitted loads the
    # machine code the first one cached (cache hit, no new index entry)
    import subprocess
    import sys

    _write_package(tmp_path, "cachepkg",
                   {"k": "def f(x, scale=0.0, extra=None):\n    return x + scale\n"})
    code = ("import numpy as np\nfrom cachepkg.k import f\nprint(f(1.0))\n"
            "s = f.jitted.stats\nprint(sum(s.cache_hits.values()), sum(s.cache_misses.values()))")
    env = _subprocess_env(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "nc"))
    out = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.split() for _ in range(2)]
    assert out[0] == ["1.0", "0", "1"]  # compiled and cached
    assert out[1] == ["1.0", "1", "0"]  # loaded


@pytest.mark.skipif(not has_module("numba"), reason="needs numba")
def test_first_compilation_says_so_once(tmp_path):
    # issue #22: the first fit in a fresh environment pauses while Numba
    # compiles; a one-line notice says why, and a process that loads the
    # kernels from the cache prints nothing
    import subprocess
    import sys

    _write_package(tmp_path, "noticepkg", {"k": "def f(x):\n    return x + 1.0\n",
                                           "k2": "def g(x):\n    return x - 1.0\n"})
    code = "from noticepkg.k import f\nfrom noticepkg.k2 import g\nprint(f(1.0) + g(1.0))"
    env = _subprocess_env(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "nc"))
    env.pop("MIXSTAT_QUIET_COMPILE", None)
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True) for _ in range(2)]
    assert runs[0].stdout.strip() == "2.0"
    assert runs[0].stderr.count("compiling Numba kernels") == 1  # two kernels, one line
    assert "compiling" not in runs[1].stderr
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**env, "NUMBA_CACHE_DIR": str(tmp_path / "nc2"),
                                "MIXSTAT_QUIET_COMPILE": "1"}, check=True)
    assert "compiling" not in quiet.stderr


def test_mixstat_compile_command(capsys):
    from mixstat.cli import compile_kernels

    assert compile_kernels() == 0
    out = capsys.readouterr().out
    assert ("kernels ready" in out) or ("Numba is not installed" in out)
