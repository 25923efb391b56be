"""What importing mixstat pulls in, and the code paths without Numba / torch.

Each check runs in a fresh interpreter (``sys.modules`` of the test process is
already full of everything).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mixstat._backend import has_module

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "cupy", "numba", "statsmodels")

# A meta-path finder that makes ``import <name>`` fail as if the library were
# not installed (importlib.util.find_spec raises, so has_module says False).
BLOCKER = textwrap.dedent(
    """
    import sys
    import importlib.abc

    class _Block(importlib.abc.MetaPathFinder):
        def __init__(self, names):
            self.names = set(names)

        def find_spec(self, fullname, path=None, target=None):
            if fullname.split(".")[0] in self.names:
                raise ModuleNotFoundError(f"No module named {fullname!r} (hidden)", name=fullname)
            return None

    sys.meta_path.insert(0, _Block(__NAMES__))
    """
)


def run_python(code, env=None, hidden=(), timeout=300):
    prefix = BLOCKER.replace("__NAMES__", repr(tuple(hidden))) if hidden else ""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-c", prefix + textwrap.dedent(code)], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_import_mixstat_imports_no_optional_library():
    out = run_python(
        """
        import sys
        import mixstat, mixstat.primitives, mixstat.utils, mixstat._validation
        mixstat.get_config()
        print(",".join(m for m in %r if m in sys.modules))
        """ % (HEAVY,)
    )
    assert out.strip() == ""


def test_numba_is_imported_only_when_a_kernel_runs():
    if not has_module("numba"):
        pytest.skip("numba is not installed")
    out = run_python(
        """
        import sys
        import numpy as np
        from mixstat.primitives import weighted_enet_cd, logsumexp
        logsumexp(np.zeros((2, 2)))
        before = "numba" in sys.modules
        weighted_enet_cd(np.random.default_rng(0).normal(size=(20, 3)), np.arange(20.0), lam1=1.0)
        print(before, "numba" in sys.modules)
        """
    )
    assert out.split() == ["False", "True"]


CD_SCRIPT = """
import sys
import numpy as np
from sklearn.linear_model import Lasso
from mixstat._backend import has_module, numba_available, resolve_backend
from mixstat.primitives import weighted_enet_cd
from mixstat.primitives._lasso import _enet_cd_kernel
rng = np.random.default_rng(0)
X = rng.normal(size=(50, 8)); y = X[:, 0] - X[:, 1] + rng.normal(size=50)
w = rng.uniform(0.5, 2, size=50)
res = weighted_enet_cd(X, y, w, lam1=0.1 * w.sum(), tol=1e-12, max_iter=10000)
sk = Lasso(alpha=0.1, tol=1e-12, max_iter=10000).fit(X, y, sample_weight=w)
assert np.abs(res.coef - sk.coef_).max() < 1e-8, res.coef - sk.coef_
print(has_module("numba"), numba_available(), resolve_backend(None, X).name,
      "numba" in sys.modules)
"""


def test_cd_solve_with_numba_hidden():
    out = run_python(CD_SCRIPT, hidden=("numba",))
    assert out.split() == ["False", "False", "numpy", "False"]


def test_cd_solve_with_numba_jit_disabled():
    if not has_module("numba"):
        pytest.skip("numba is not installed")
    out = run_python(CD_SCRIPT, env={"NUMBA_DISABLE_JIT": "1"})
    assert out.split() == ["True", "True", "numba", "True"]


MINE = ["test_logsumexp.py", "test_gaussian.py", "test_lasso.py", "test_multinomial.py",
        "test_assignment.py"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "env, hidden, files",
    [({"NUMBA_DISABLE_JIT": "1"}, (), ["test_lasso.py", "test_multinomial.py"]),
     ({}, ("numba",), ["test_lasso.py", "test_multinomial.py"]),
     ({}, ("torch",), MINE)],
    ids=["NUMBA_DISABLE_JIT", "numba-hidden", "torch-hidden"],
)
def test_primitives_suite_without_numba_or_torch(env, hidden, files):
    """The primitives' tests in a subprocess without Numba (JIT disabled, or
    not importable) and without torch (its namespace cases skip)."""
    paths = [str(ROOT / "tests" / "primitives" / f) for f in files]
    run_python(
        f"""
        import sys
        import pytest
        code = pytest.main(["-q", "-x", "-p", "no:cacheprovider", *{paths!r}])
        sys.exit(int(code))
        """,
        env=env, hidden=hidden, timeout=600,
    )


def test_missing_optional_backend_is_a_clear_error():
    """With torch / Numba not importable, asking for them raises an ImportError
    that names the extra to install, never a bare ``No module named``."""
    out = run_python(
        """
        import numpy as np
        from mixstat.circuits import SquaredCircuitDensity, SquaredGaussianMixture
        from mixstat.mixer import MixERODE
        from mixstat.moe import GaussianMoERegressor

        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
        calls = {
            "nn": lambda: __import__("mixstat.nn"),
            "circuit": lambda: SquaredCircuitDensity().fit(X),
            "ode": lambda: MixERODE().fit(np.zeros((2, 5, 1)), np.arange(5.0), [0, 1]),
            "sgmm-torch": lambda: SquaredGaussianMixture(2, backend="torch").fit(X),
            "moe-torch": lambda: GaussianMoERegressor(2, backend="torch").fit(X, y),
            "moe-numba": lambda: GaussianMoERegressor(2, backend="numba").fit(X, y),
        }
        for name, call in calls.items():
            try:
                call()
            except ImportError as exc:
                assert type(exc) is ImportError, (name, exc)  # not ModuleNotFoundError
                extra = "numba" if name.endswith("numba") else "torch"
                assert f"pip install 'mixstat[{extra}]'" in str(exc), (name, exc)
                print(name)
        """,
        hidden=("torch", "numba"),
    )
    assert out.split() == ["nn", "circuit", "ode", "sgmm-torch", "moe-torch", "moe-numba"]
