"""Kawata et al. (2025)'s clustered single-index data: the generator matches
its formula, the projections are standard normal, the global task cancels."""

import math

import numpy as np
import pytest

from mixstat.datasets import make_latent_cluster_regression


def test_formula_and_params():
    X, y, p = make_latent_cluster_regression(
        500,
        12,
        3,
        information_exponent=2,
        degree=4,
        noise=0.0,
        random_state=0,
        return_params=True,
    )
    assert X.shape == (500, 12) and y.shape == (500,)
    he = {
        2: lambda z: z**2 - 1,
        3: lambda z: z**3 - 3 * z,
        4: lambda z: z**4 - 6 * z**2 + 3,
    }

    def link(coef, z):
        return sum(
            b * he[i](z) / math.sqrt(math.factorial(i))
            for i, b in zip((2, 3, 4), coef, strict=False)
        )

    lab = p["labels"]
    expect = np.array(
        [
            link(p["local_coefs"][c], X[i] @ p["local_directions"][c])
            + p["global_signs"][c]
            * link(p["global_coefs"], X[i] @ p["global_direction"])
            for i, c in enumerate(lab)
        ]
    )
    np.testing.assert_allclose(y, expect, rtol=1e-10, atol=1e-10)
    assert abs(p["global_signs"].sum()) < 1e-12
    assert np.all(np.abs(p["local_coefs"][:, 0]) == abs(p["global_coefs"][0]))
    Q = np.vstack(
        [p["cluster_means"] / 3.0, p["local_directions"], p["global_direction"]]
    )
    np.testing.assert_allclose(Q @ Q.T, np.eye(7), atol=1e-12)


def test_projections_are_standard_normal_and_clusters_centred():
    X, y, p = make_latent_cluster_regression(
        20000, 16, 4, cluster_scale=2.5, noise=0.3, random_state=1, return_params=True
    )
    lab = p["labels"]
    assert np.all(np.abs(np.bincount(lab) / 20000 - 0.25) < 0.02)
    for c in range(4):
        Xc = X[lab == c]
        np.testing.assert_allclose(Xc.mean(0), p["cluster_means"][c], atol=0.08)
        z = Xc @ p["local_directions"][c]
        assert abs(z.mean()) < 0.06 and abs(z.var() - 1) < 0.08
    # pure He_3 links: E[y | cluster] = 0 and Var = 1 + 1 + noise^2
    assert abs(y.mean()) < 0.05 and abs(y.var() - (2 + 0.09)) < 0.15


def test_without_global_task_and_reproducible():
    a = make_latent_cluster_regression(
        50, 9, 2, global_task=False, random_state=3, return_params=True
    )
    b = make_latent_cluster_regression(50, 9, 2, global_task=False, random_state=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.all(a[2]["global_signs"] == 0)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(n_clusters=1), "n_clusters"),
        (dict(n_features=8, n_clusters=4), "n_features"),
        (dict(information_exponent=3, degree=2), "information_exponent"),
        (dict(noise=-1.0), "noise"),
    ],
)
def test_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        make_latent_cluster_regression(**kw)
