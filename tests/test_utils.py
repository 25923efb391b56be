"""parallel_map: the one joblib loop, with n_jobs=1, 2 and on a Dask cluster."""

import numpy as np
import pytest

from mixstat import config_context, get_config
from mixstat.primitives import weighted_enet_cd
from mixstat.utils import parallel_map


def _solve(seed):
    """A small deterministic job: a weighted Lasso on data of its own seed."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 6))
    y = X[:, 0] - 2 * X[:, 3] + rng.normal(size=40)
    res = weighted_enet_cd(X, y, rng.uniform(0.5, 2, size=40), lam1=5.0, tol=1e-12)
    return seed, res.coef, res.intercept


def _same(a, b):
    assert [r[0] for r in a] == [r[0] for r in b]  # in order
    for (_, c1, i1), (_, c2, i2) in zip(a, b, strict=True):
        np.testing.assert_allclose(c1, c2, rtol=0, atol=1e-12)
        assert abs(i1 - i2) <= 1e-12


def test_parallel_map_n_jobs_1_and_2_agree():
    seeds = list(range(6))
    serial = [_solve(s) for s in seeds]
    _same(parallel_map(_solve, seeds, n_jobs=1), serial)
    # loky processes; without Numba there, so that the workers start quickly
    # (the configuration travels with the jobs)
    with config_context(use_numba=False):
        serial_np = [_solve(s) for s in seeds]
        _same(parallel_map(_solve, iter(seeds), n_jobs=2), serial_np)  # any iterable
    _same(serial_np, serial)
    assert parallel_map(_solve, [], n_jobs=2) == []


def test_parallel_map_carries_the_configuration_into_workers():
    def read(_):
        return get_config()["backend"], get_config()["use_numba"]

    with config_context(backend="numpy", use_numba=False):
        out = parallel_map(read, range(4), n_jobs=2)
    assert out == [("numpy", False)] * 4
    import joblib

    with config_context(backend="numpy"), joblib.parallel_backend("threading", n_jobs=2):
        assert parallel_map(read, range(3))[0][0] == "numpy"


def test_parallel_map_progress_bar(capsys):
    out = parallel_map(lambda x: x * x, range(5), n_jobs=1, verbose=1, desc="squares")
    assert out == [0, 1, 4, 9, 16]
    err = capsys.readouterr().err
    assert "squares" in err and "5/5" in err
    with config_context(show_progress=False):
        parallel_map(lambda x: x, range(3), verbose=1, desc="hidden")
    assert "hidden" not in capsys.readouterr().err


def test_parallel_map_on_a_dask_cluster():
    """``with joblib.parallel_backend('dask')`` runs the loop on the cluster."""
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    import joblib

    def job(seed):
        worker = distributed.get_worker()  # raises when not on a Dask worker
        return (*_solve(seed), worker.address)

    seeds = list(range(6))
    serial = [_solve(s) for s in seeds]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster), joblib.parallel_backend("dask"):
        out = parallel_map(job, seeds)
        n_workers = len(cluster.workers)
    _same([r[:3] for r in out], serial)
    assert n_workers == 2
    assert all(r[3].startswith(("inproc://", "tcp://")) for r in out)
