import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from mixstat.nn.circuits import (  # noqa: E402
    TensorizedCircuit,
    linear_tree,
    quad_tree,
    random_binary_tree,
    train_density,
)
from mixstat.primitives import signed_logsumexp  # noqa: E402
from mixstat.primitives._signed_matmul import signed_log_matmul  # noqa: E402

F64 = torch.float64


def _model(D=2, K=3, weights="signed", squared=True, layer="cp", R=1, inputs="gaussian", seed=0, rg="bt", **kw):
    make = {"bt": random_binary_tree, "lt": linear_tree}[rg]
    gen = torch.Generator().manual_seed(seed)
    m = TensorizedCircuit([make(D, seed + r) for r in range(R)], n_units=K, weights=weights, squared=squared,
                          layer=layer, inputs=inputs, generator=gen, **kw)
    if weights == "signed":  # make sure there are negative weights
        with torch.no_grad():
            for w in m.sum_weights:
                w.uniform_(-1, 1, generator=gen)
    return m


def _grid2(lo, hi, n):
    g = torch.linspace(lo, hi, n, dtype=F64)
    return g, torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)


def _simpson_w(g):
    n = len(g)
    w = torch.ones(n, dtype=F64)
    w[1:-1:2], w[2:-1:2] = 4, 2
    return w * (g[1] - g[0]) / 3


# ------------------------------------------------------------- primitive --
@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), shift=st.floats(-500, 500))
def test_signed_log_matmul_equals_signed_logsumexp_and_direct(seed, shift):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(4, 5))
    lb = rng.normal(size=(5, 3)) + shift
    sb = np.sign(rng.normal(size=(5, 3)))
    la, sa = signed_log_matmul(torch.as_tensor(a), torch.as_tensor(lb), torch.as_tensor(sb))
    terms = np.log(np.abs(a))[:, :, None] + lb[None]
    ref, rs = signed_logsumexp(terms, np.sign(a)[:, :, None] * sb[None], axis=1)
    np.testing.assert_allclose(la.numpy(), ref, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(sa.numpy(), rs)
    if abs(shift) < 50:  # direct evaluation does not overflow here
        direct = a @ (sb * np.exp(lb))
        np.testing.assert_allclose(np.exp(la.numpy()) * sa.numpy(), direct, rtol=1e-10)


def test_signed_log_matmul_gradcheck_and_zero_column():
    a = torch.randn(3, 4, dtype=F64, requires_grad=True)
    lb = torch.randn(2, 4, 5, dtype=F64, requires_grad=True)
    sb = torch.sign(torch.randn(2, 4, 5, dtype=F64))
    assert torch.autograd.gradcheck(lambda a, lb: signed_log_matmul(a, lb, sb)[0], (a, lb))
    lb2 = lb.detach().clone()
    lb2[:, :, 0] = -math.inf  # an all-zero column: -inf out, finite gradients
    lb2.requires_grad_(True)
    out, _ = signed_log_matmul(a, lb2)
    assert torch.isinf(out[..., 0]).all()
    out[..., 1:].sum().backward()
    assert torch.isfinite(lb2.grad).all() and torch.isfinite(a.grad).all()


# --------------------------------------------------------- normalisation --
@pytest.mark.parametrize(
    "weights,squared,layer,R",
    [("signed", True, "cp", 1), ("signed", True, "tucker", 1), ("positive", True, "cp", 2),
     ("positive", False, "cp", 1), ("signed", True, "cp", 3)],
)
def test_normalised_2d_quadrature(weights, squared, layer, R):
    m = _model(2, 3, weights, squared, layer, R)
    with torch.no_grad():
        for p in (m.input.log_scale,):
            p.clamp_(-0.5, 0.7)  # keep the units wide enough for the grid
        g, X = _grid2(-14, 14, 1401)
        p = torch.exp(m(X)).reshape(len(g), len(g))
        w = _simpson_w(g)
        tot = float(w @ p @ w)
    assert abs(tot - 1) < 1e-6


def test_normalised_1d_quadrature_bernstein():
    m = _model(1, 4, inputs="bernstein", degree=6)
    from scipy import integrate

    f = lambda x: float(torch.exp(m(torch.tensor([[x]], dtype=F64))))  # noqa: E731
    with torch.no_grad():
        val, _ = integrate.quad(f, 0, 1, epsabs=1e-12)
    assert abs(val - 1) < 1e-6


def test_bounded_gaussian_scales_normalised_and_capped():
    m = _model(2, 3, max_scale=1.0)
    sd0 = m.input.scale().detach().clone()
    assert float(sd0.max()) < 1.0 and float(sd0.min()) > m.input.min_scale
    with torch.no_grad():
        g, X = _grid2(-10, 10, 1001)
        w = _simpson_w(g)
        assert abs(float(w @ torch.exp(m(X)).reshape(len(g), len(g)) @ w) - 1) < 1e-6
        m.input.log_scale.fill_(50.0)  # the sigmoid saturates at the cap
    assert torch.allclose(m.input.scale(), torch.ones_like(sd0))
    with pytest.raises(ValueError, match="max_scale"):
        _model(2, 3, max_scale=1e-4)


def test_gaussian_scale_bound_default_and_unbounded_option():
    # default: sigma in (min_scale, 2) through a sigmoid; None: sigma = e^s + min_scale, unbounded;
    # both start from the same draw sigmoid(N(0, 1)) for the same generator (+ min_scale when unbounded)
    mb, mu = _model(2, 3), _model(2, 3, max_scale=None)
    assert mb.input.max_scale == 2.0 and mu.input.max_scale is None
    torch.testing.assert_close(mb.input.scale(), mu.input.scale() - 1e-3, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(mb.input.mean, mu.input.mean)
    with torch.no_grad():
        g, X = _grid2(-12, 12, 1201)
        w = _simpson_w(g)
        assert abs(float(w @ torch.exp(mu(X)).reshape(len(g), len(g)) @ w) - 1) < 1e-6
        mb.input.log_scale.fill_(50.0)
        mu.input.log_scale.fill_(3.0)
    torch.testing.assert_close(mb.input.scale(), torch.full_like(mb.input.scale(), 2.0))
    torch.testing.assert_close(mu.input.scale(), torch.full_like(mu.input.scale(), math.exp(3.0) + 1e-3))


def _gl_knot_cells(n_knots, q):
    """Gauss-Legendre nodes/weights, q per knot interval of [0, 1]: exact for
    piecewise polynomials of degree <= 2q - 1 on those intervals."""
    z, w = np.polynomial.legendre.leggauss(q)
    u = np.linspace(0, 1, n_knots + 1)
    h = np.diff(u)
    return (u[:-1, None] + h[:, None] * (1 + z) / 2).ravel(), (h[:, None] * w / 2).ravel()


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_bspline_basis_matches_scipy_and_is_normalised(degree):
    from scipy.interpolate import BSpline

    from mixstat.nn.circuits import BSplineInput

    inp = BSplineInput([0], 2, n_knots=5, degree=degree)
    x = torch.linspace(-0.2, 1.2, 281, dtype=F64)
    b = inp.basis(x).numpy()
    t = inp.knots.numpy()
    ref = BSpline.design_matrix(np.clip(x.numpy(), 0, 1), t, degree).toarray() * inp.basis_scale.numpy()
    ref[(x.numpy() < 0) | (x.numpy() > 1)] = 0.0
    np.testing.assert_allclose(b, ref, atol=1e-12)
    g, w = _gl_knot_cells(5, degree + 1)
    B = inp.basis(torch.as_tensor(g)).numpy()
    np.testing.assert_allclose(w @ B, 1.0, atol=1e-12)  # each basis is a density
    np.testing.assert_allclose(inp.cum_gram[-1].numpy(), (B * w[:, None]).T @ B, atol=1e-10)


@pytest.mark.parametrize("weights,squared,layer", [("signed", True, "cp"), ("signed", True, "tucker"),
                                                   ("positive", True, "cp"), ("positive", False, "cp")])
def test_bspline_normalised_marginal_and_cdf(weights, squared, layer):
    from scipy import integrate

    from mixstat.nn.circuits._inputs import CDF, INTEGRATED

    m = _model(2, 3, weights, squared, layer, inputs="bspline", n_knots=6, degree=2)
    g, w = _gl_knot_cells(6, 6)  # c^2 is of degree 4 per variable and knot cell: exact
    X = torch.as_tensor(np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2))
    with torch.no_grad():
        p = torch.exp(m(X)).numpy().reshape(len(g), len(g))
        assert abs(w @ p @ w - 1) < 1e-10
        # a point outside the support has zero density
        assert float(m(torch.tensor([[1.2, 0.5]], dtype=F64))) == -math.inf
        obs = torch.tensor([True, False])
        for x0 in (0.13, 0.61):
            num = w @ torch.exp(m(torch.as_tensor(np.c_[np.full_like(g, x0), g]))).numpy()
            lm = float(torch.exp(m.log_marginal(torch.tensor([[x0, 0.0]], dtype=F64), obs)))
            assert abs(lm - num) < 1e-10
            # integral of the marginal up to x0 (the CDF query used for sampling)
            cdf = float(torch.exp(m.log_query(torch.tensor([[x0, 0.0]], dtype=F64), torch.tensor([[CDF, INTEGRATED]]))))
            ref, _ = integrate.quad(
                lambda s: float(torch.exp(m.log_marginal(torch.tensor([[s, 0.0]], dtype=F64), obs))),
                0, x0, points=[1 / 6, 2 / 6, 3 / 6], epsabs=1e-13, epsrel=1e-12,
            )
            assert abs(cdf - ref) < 1e-9


def test_bspline_gradcheck_and_sampling():
    m = _model(2, 2, inputs="bspline", n_knots=4, degree=2)
    X = torch.rand(5, 2, dtype=F64, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    theta = m.input.theta.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda th: torch.func.functional_call(m, {"input.theta": th}, (X,)), (theta,))
    S = m.sample(1500, generator=torch.Generator().manual_seed(0), n_bisect=40)
    assert float(S.min()) >= 0 and float(S.max()) <= 1
    with torch.no_grad():
        grid = torch.linspace(0, 1, 401, dtype=F64)
        from mixstat.nn.circuits._inputs import CDF, INTEGRATED

        mode = torch.tensor([[CDF, INTEGRATED]]).expand(len(grid), -1)
        cdf = torch.exp(m.log_query(torch.stack([grid, torch.zeros_like(grid)], 1), mode)).numpy()
    emp = np.searchsorted(np.sort(S[:, 0].numpy()), grid.numpy()) / len(S)
    assert np.max(np.abs(emp - cdf)) < 1.63 / np.sqrt(len(S)) + 1e-3  # KS at 1%


@pytest.mark.parametrize("weights,squared,rg", [("signed", True, "bt"), ("positive", False, "lt"), ("positive", True, "lt")])
def test_normalised_by_enumeration_categorical(weights, squared, rg):
    ncat = [3, 2, 4, 2]
    m = _model(4, 3, weights, squared, rg=rg, inputs="categorical", n_categories=ncat)
    X = torch.tensor(list(itertools.product(*[range(c) for c in ncat])), dtype=F64)
    with torch.no_grad():
        assert abs(float(torch.exp(m(X)).sum()) - 1) < 1e-12
        # marginals by enumeration too
        obs = torch.tensor([True, False, True, False])
        lm = m.log_marginal(X, obs)
        full = torch.exp(m(X)).reshape(3, 2, 4, 2).sum(dim=(1, 3))
        np.testing.assert_allclose(torch.exp(lm).reshape(3, 2, 4, 2)[:, 0, :, 0].numpy(), full.numpy(), rtol=1e-10)


def test_quad_tree_normalised():
    rg = quad_tree(2, 3)
    ncat = [2] * 6
    m = TensorizedCircuit([rg], n_units=2, inputs="categorical", n_categories=ncat,
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for w in m.sum_weights:
            w.uniform_(-1, 1)
        X = torch.tensor(list(itertools.product(*[range(2)] * 6)), dtype=F64)
        assert abs(float(torch.exp(m(X)).sum()) - 1) < 1e-12


# ------------------------------------------------------------- identities --
@settings(max_examples=8)
@given(seed=st.integers(0, 1000), scale=st.floats(0.1, 10))
def test_invariant_to_sign_flip_and_scale_of_a_layer(seed, scale):
    m = _model(4, 3, seed=seed)
    X = torch.randn(7, 4, dtype=F64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = m(X).clone()
        m.sum_weights[-1].mul_(-scale)  # root layer w -> -scale * w
        np.testing.assert_allclose(m(X).numpy(), ref.numpy(), rtol=1e-10, atol=1e-10)
        m.sum_weights[0].mul_(-1.0)  # an inner layer: c -> -c
        np.testing.assert_allclose(m(X).numpy(), ref.numpy(), rtol=1e-10, atol=1e-10)


def _direct_c(m, X):
    """c(x) by explicit loops in linear space (small circuits only), D=2, CP."""
    f = torch.exp(m.input.log_unit(X))  # (2, B, K)
    W = m.sum_weights[0]
    return (W[0] @ (f[0] * f[1]).T)[0]


@settings(max_examples=8)
@given(seed=st.integers(0, 1000))
def test_signed_log_space_equals_direct(seed):
    m = _model(2, 4, seed=seed)
    X = torch.randn(20, 2, dtype=F64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        lc, sc = m.log_circuit(m.input.log_unit(X))
        c = _direct_c(m, X)
        np.testing.assert_allclose((sc[0] * torch.exp(lc[0])).numpy(), c.numpy(), rtol=1e-10)
        # Z = w^T G w with the Kronecker-free W A W^T equals the explicit Kronecker form
        G = torch.exp(m.input.log_gram())  # (2, K, K)
        W = m.sum_weights[0][0, 0]
        Z = W @ (G[0] * G[1]) @ W
        assert abs(float(torch.exp(m.log_partition()[0])) / float(Z) - 1) < 1e-10
        WW = torch.kron(W[None], W[None])[0]
        Zk = WW @ (G[0] * G[1]).reshape(-1)
        assert abs(float(Z) / float(Zk) - 1) < 1e-12


def test_k1_is_a_gaussian():
    m = _model(2, 1, weights="signed")
    X = torch.randn(10, 2, dtype=F64)
    with torch.no_grad():
        mu, sd = m.input.mean[:, 0], torch.sqrt(m.input.var()[:, 0])
        var_sq = sd**2 / 2  # c^2 for one Gaussian unit per variable is N(mu, sigma^2/2)
        v = m.input.variables
        ref = (-0.5 * (math.log(2 * math.pi) + torch.log(var_sq) + (X[:, v] - mu) ** 2 / var_sq)).sum(1)
        np.testing.assert_allclose(m(X).numpy(), ref.numpy(), rtol=1e-10)


@pytest.mark.parametrize("weights,squared", [("signed", True), ("positive", False)])
def test_marginal_equals_numerical_integration(weights, squared):
    m = _model(3, 3, weights, squared)
    with torch.no_grad():
        m.input.log_scale.clamp_(-0.5, 0.7)
        g = torch.linspace(-14, 14, 1401, dtype=F64)
        w = _simpson_w(g)
        for x0 in (-0.6, 0.9):
            X = torch.stack([torch.full_like(g, x0), g, torch.full_like(g, 0.3)], 1)
            num = float(w @ torch.exp(m(X)))
            lm = m.log_marginal(torch.tensor([[x0, 0.0, 0.3]], dtype=F64), torch.tensor([True, False, True]))
            assert abs(float(torch.exp(lm)) - num) < 1e-7


def test_sampling_continuous_matches_marginal_cdf():
    m = _model(2, 3)
    S = m.sample(1500, generator=torch.Generator().manual_seed(0), n_bisect=40)
    with torch.no_grad():
        g = torch.linspace(-10, 10, 2001, dtype=F64)
        X = torch.stack([g, torch.zeros_like(g)], 1)
        p = torch.exp(m.log_marginal(X, torch.tensor([True, False]))).numpy()
    from scipy import integrate

    cdf = integrate.cumulative_simpson(p, x=g.numpy(), initial=0)
    emp = np.searchsorted(np.sort(S[:, 0].numpy()), g.numpy()) / len(S)
    assert np.max(np.abs(emp - cdf)) < 1.63 / np.sqrt(len(S)) + 1e-3


def test_sampling_discrete_exact_frequencies():
    ncat = [3, 2]
    m = _model(2, 2, inputs="categorical", n_categories=ncat)
    S = m.sample(6000, generator=torch.Generator().manual_seed(1))
    X = torch.tensor(list(itertools.product(range(3), range(2))), dtype=F64)
    with torch.no_grad():
        p = torch.exp(m(X)).numpy()
    counts = np.array([np.sum((S[:, 0].numpy() == a) & (S[:, 1].numpy() == b)) for a, b in X.numpy()])
    chi2 = np.sum((counts - 6000 * p) ** 2 / (6000 * p))
    assert chi2 < 20.5  # chi2(5) 0.1% quantile


# ------------------------------------------------------------ robustness --
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_nan_deep_tree_large_k_float32(dtype):
    D, K = 64, 32
    m = TensorizedCircuit([random_binary_tree(D, 0)], n_units=K, dtype=dtype,
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for w in m.sum_weights:
            w.normal_(0, 1)  # N(0,1) init: Z overflows linear space at this depth
    X = 3 * torch.randn(16, D, dtype=dtype)
    lp = m(X)
    assert torch.isfinite(lp).all()
    assert float(m.log_partition()[0]) > 80  # exp of it overflows float32
    (-lp.mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_divergence_stops_and_keeps_best():
    m = _model(2, 3)
    X = torch.randn(300, 2, dtype=F64)
    res = train_density(m, X, X[:50], max_epochs=3, learning_rate=1e-2, early_stopping=False)
    best = res.best_valid
    with torch.no_grad():
        m.input.mean[0, 0] = float("nan")  # poison: next epoch diverges
    res2 = train_density(m, X, X[:50], max_epochs=5, learning_rate=1e-2, early_stopping=False)
    assert res2.diverged and "diverged" in res2.message
    assert np.isfinite(best)


def test_training_improves_and_orders_models():
    from mixstat.datasets import make_circuit_dataset

    X = torch.as_tensor(make_circuit_dataset("banana", 1200, random_state=0), dtype=F64)
    out = {}
    for name, (w, sq) in {"+-^2": ("signed", True), "+": ("positive", False)}.items():
        m = TensorizedCircuit([random_binary_tree(2, 0)], n_units=6, weights=w, squared=sq,
                              generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            before = float(m(X).mean())
        res = train_density(m, X[:1000], X[1000:], max_epochs=15, learning_rate=2e-2, early_stopping=False)
        out[name] = res.best_valid
        assert res.best_valid > before + 0.3
    assert all(np.isfinite(v) for v in out.values())


def test_bad_construction():
    with pytest.raises(ValueError, match="squared"):
        TensorizedCircuit([random_binary_tree(2, 0)], weights="signed", squared=False)
    with pytest.raises(ValueError, match="Tucker"):
        TensorizedCircuit([quad_tree(2, 2)], layer="tucker")
    with pytest.raises(ValueError, match="n_categories"):
        TensorizedCircuit([random_binary_tree(2, 0)], inputs="categorical")


def test_conditional_integrates_to_one_and_matches_ratio():
    m = _model(3, 3)
    with torch.no_grad():
        m.input.log_scale.clamp_(-0.5, 0.7)
        g = torch.linspace(-14, 14, 1401, dtype=F64)
        X = torch.stack([g, torch.full_like(g, 0.4), torch.full_like(g, -0.2)], 1)
        T = torch.tensor([True, False, False])
        G = torch.tensor([False, True, False])
        lc = m.log_conditional(X, T, G)
        assert abs(float(_simpson_w(g) @ torch.exp(lc)) - 1) < 1e-7
        with pytest.raises(ValueError, match="disjoint"):
            m.log_conditional(X, T, T)


def test_init_from_data_puts_each_unit_at_one_training_point():
    # unit k of every leaf (all replicas) gets the coordinates of the same training row; scales untouched;
    # the density is still normalised
    X = torch.randn(50, 3, dtype=F64, generator=torch.Generator().manual_seed(1)) * 3 + 1
    m = _model(3, 4, R=2)
    sd0 = m.input.scale().detach().clone()
    m.init_from_data(X, generator=torch.Generator().manual_seed(0))
    pts = torch.zeros(4, 3, dtype=F64)
    pts[:, m.input.variables] = m.input.mean.detach().T  # (K, D): rows must be rows of X
    for k in range(4):
        assert torch.isclose(X, pts[k]).all(dim=1).any()
    assert len({tuple(r.tolist()) for r in pts}) == 4  # distinct rows (n >= K)
    torch.testing.assert_close(m.input.scale(), sd0)
    with torch.no_grad():
        g, Xg = _grid2(-15, 15, 801)
        w = _simpson_w(g)
        m2 = _model(2, 3)
        m2.init_from_data(X[:2, :2])  # n < K: drawn with replacement
        assert abs(float(w @ torch.exp(m2(Xg)).reshape(len(g), len(g)) @ w) - 1) < 1e-6
    mc = _model(2, 3, inputs="categorical", n_categories=[3, 3])
    before = [p.detach().clone() for p in mc.parameters()]
    mc.init_from_data(torch.zeros(5, 2, dtype=F64))  # no data start for other inputs: a no-op
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, mc.parameters(), strict=True))


# ------------------------------------------------- fused layers and folds --
def _direct(m, X, region_graphs):
    """c_r(x) and Z_r by recursion over each tree in linear space (float64,
    small circuits): the product of the children, then the weights of the
    region's fold row; Z from the inputs' Gram matrices, A -> W A W^T."""
    f = torch.exp(m.input.log_unit(X))  # (F_leaf, B, K)
    G = torch.exp(m.input.log_gram())  # (F_leaf, K, K)
    cs, zs = [], []
    for r, rg in enumerate(region_graphs):
        def val(i):
            ch = rg.children[i]
            if not ch:
                p = m._positions[(r, i)]
                v, a = f[p], G[p]
            else:
                kids = [val(c) for c in ch]
                if m.layer == "tucker":
                    (v0, a0), (v1, a1) = kids
                    v = (v0[:, :, None] * v1[:, None, :]).reshape(v0.shape[0], -1)
                    a = torch.kron(a0, a1)
                else:
                    v = torch.stack([k[0] for k in kids]).prod(0)
                    a = torch.stack([k[1] for k in kids]).prod(0)
            if i == rg.root or ch:
                gi, j = m._fold_of[(r, i)]
                W = m._w(gi)[j]
                v, a = v @ W.T, W @ a @ W.T
            return v, a

        v, a = val(rg.root)
        cs.append(v[:, 0])
        zs.append(a[0, 0])
    return torch.stack(cs), torch.stack(zs)


@pytest.mark.parametrize(
    "make,D,layer,weights,R",
    [("bt", 8, "cp", "signed", 1), ("bt", 8, "cp", "positive", 2), ("bt", 5, "cp", "signed", 2),
     ("lt", 5, "cp", "signed", 1), ("lt", 4, "tucker", "signed", 1), ("bt", 4, "tucker", "positive", 1),
     ("qt", 6, "cp", "signed", 1)],
)
def test_fused_layers_equal_direct_recursion(make, D, layer, weights, R):
    # the folded, fused evaluation (contiguous child blocks where the tree is balanced, a gather
    # elsewhere) equals the plain recursion over each tree, for c(x) and for Z
    gen = torch.Generator().manual_seed(D + R)
    if make == "qt":
        rgs = [quad_tree(2, 3)]
    else:
        mk = {"bt": random_binary_tree, "lt": linear_tree}[make]
        rgs = [mk(D, r) for r in range(R)]
    m = TensorizedCircuit(rgs, n_units=3, weights=weights, squared=True, layer=layer, generator=gen)
    if weights == "signed":
        with torch.no_grad():
            for w in m.sum_weights:
                w.uniform_(-1, 1, generator=gen)
    X = torch.randn(11, rgs[0].n_variables, dtype=F64, generator=gen)
    with torch.no_grad():
        c, Z = _direct(m, X, rgs)
        lc, sc = m.log_circuit(m.input.log_unit(X))
        torch.testing.assert_close(sc * torch.exp(lc), c, rtol=1e-10, atol=1e-300)
        torch.testing.assert_close(torch.exp(m.log_partition()), Z, rtol=1e-10, atol=0)
    if make == "bt" and D == 8:
        assert all(g.block is not None for g in m.groups)  # a balanced tree needs no gather


@pytest.mark.parametrize("weights,squared", [("signed", True), ("positive", True), ("positive", False)])
def test_contiguous_blocks_equal_gather(weights, squared):
    # the view of a contiguous block of children and the generic gather give the same values and gradients
    m = _model(8, 4, weights, squared, R=2, seed=3)
    X = torch.randn(9, 8, dtype=F64, generator=torch.Generator().manual_seed(0))
    out, grads = [], []
    for blocks in (True, False):
        if not blocks:
            for g in m.groups:
                g.block = None
        m.zero_grad()
        lp = m(X)
        lp.sum().backward()
        out.append(lp.detach())
        grads.append([p.grad.clone() for p in m.parameters() if p.grad is not None])
    torch.testing.assert_close(out[0], out[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("arity", [1, 2, 3])
def test_sum_layers_gradcheck_and_direct(arity):
    from mixstat.nn.circuits._layers import pair_sum_layer, positive_sum_layer, signed_sum_layer

    gen = torch.Generator().manual_seed(arity)
    F, B, K, Ko = 2, 5, 4, 3
    cl = torch.randn(F, arity, B, K, dtype=F64, generator=gen, requires_grad=True)
    cs = torch.sign(torch.randn(F, arity, B, K, dtype=F64, generator=gen))
    w = torch.randn(F, Ko, K, dtype=F64, generator=gen, requires_grad=True)
    wp = torch.rand(F, Ko, K, dtype=F64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, c: signed_sum_layer(w, c, cs)[0], (w, cl))
    assert torch.autograd.gradcheck(lambda w, c: signed_sum_layer(w, c, None)[0], (w, cl))
    assert torch.autograd.gradcheck(positive_sum_layer, (wp, cl))
    # the fused layer is the product of the children followed by the generic primitive
    ref_l, ref_s = signed_log_matmul(w, cl.sum(1).transpose(1, 2), cs.prod(1).transpose(1, 2))
    lo, so = signed_sum_layer(w, cl, cs)
    torch.testing.assert_close(lo, ref_l.transpose(1, 2), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(so, ref_s.transpose(1, 2))
    g_f = torch.autograd.grad(lo.sum(), (w, cl))
    g_r = torch.autograd.grad(ref_l.sum(), (w, cl))
    for a, b in zip(g_f, g_r, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        v = (cs * torch.exp(cl)).prod(1)  # (F, B, K)
        lo, so = signed_sum_layer(w, cl, cs)
        torch.testing.assert_close(so * torch.exp(lo), v @ w.transpose(-1, -2), rtol=1e-10, atol=0)
        torch.testing.assert_close(torch.exp(positive_sum_layer(wp, cl)), torch.exp(cl).prod(1) @ wp.transpose(-1, -2))
    for Bp in (1, 3):  # one matrix per fold (Z) and a batch of them (marginal queries)
        ca = torch.randn(F, arity, Bp, K, K, dtype=F64, generator=gen, requires_grad=True)
        sa = torch.sign(torch.randn(F, arity, Bp, K, K, dtype=F64, generator=gen))
        assert torch.autograd.gradcheck(lambda w, c: pair_sum_layer(w, c, sa)[0], (w, ca))
        with torch.no_grad():
            A = (sa * torch.exp(ca)).prod(1)
            lo, so = pair_sum_layer(w, ca, sa)
            torch.testing.assert_close(so * torch.exp(lo), w[:, None] @ A @ w[:, None].transpose(-1, -2),
                                       rtol=1e-10, atol=0)


def test_sum_layers_exact_zero_and_huge_shift():
    from mixstat.nn.circuits._layers import pair_sum_layer, positive_sum_layer

    cl = torch.full((1, 2, 3, 4), 600.0, dtype=F64)  # exp overflows: the shift keeps it finite
    cl[0, 0, 1] = -math.inf  # sample 1: every unit exactly zero
    cl.requires_grad_(True)
    w = torch.rand(1, 2, 4, dtype=F64, requires_grad=True)
    out = positive_sum_layer(w, cl)
    assert torch.isinf(out[0, 1]).all() and (out[0, 1] < 0).all()
    torch.testing.assert_close(out[0, 0], 1200 + torch.log(w[0].sum(1)))
    out[0, [0, 2]].sum().backward()
    assert torch.isfinite(cl.grad).all() and torch.isfinite(w.grad).all()
    ca = torch.full((1, 1, 1, 2, 2), -900.0, dtype=F64)  # exp underflows: the shift keeps it finite
    wq = torch.tensor([[[1.0, -1.0]]], dtype=F64)  # W A W^T cancels exactly: -inf, no NaN
    lo, so = pair_sum_layer(wq, ca)
    assert float(lo) == -math.inf and float(so) == 0
    torch.testing.assert_close(pair_sum_layer(torch.ones_like(wq), ca)[0].reshape(()),
                               torch.tensor(-900 + math.log(4), dtype=F64))


def test_gaussian_log_unit_gradcheck_and_value():
    from mixstat.nn.circuits._inputs import _gaussian_log_unit

    gen = torch.Generator().manual_seed(0)
    xv = torch.randn(3, 5, 1, dtype=F64, generator=gen, requires_grad=True)
    mu = torch.randn(3, 4, dtype=F64, generator=gen, requires_grad=True)
    sd = (torch.rand(3, 4, dtype=F64, generator=gen) + 0.3).requires_grad_(True)
    assert torch.autograd.gradcheck(_gaussian_log_unit, (xv, mu, sd))
    ref = torch.distributions.Normal(mu[:, None, :], sd[:, None, :]).log_prob(xv)
    torch.testing.assert_close(_gaussian_log_unit(xv, mu, sd), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", ["fused-kernel", "optimizer"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_training_adam_equals_torch_adam(dtype, path):
    # both routes of the training loop's Adam (the fused kernel called directly, torch.optim.Adam where the
    # kernel is refused) take the steps of torch.optim.Adam
    from mixstat.nn.circuits._train import _Adam

    def ours(ps):
        opt = _Adam(ps, 1e-2)
        if path == "optimizer":
            opt._raw = False
        return opt

    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(4, 3, dtype=dtype, generator=gen), torch.randn(5, dtype=dtype, generator=gen),
            torch.randn(2, dtype=dtype, generator=gen)]
    runs = []
    for make in (ours, lambda ps: torch.optim.Adam(ps, lr=1e-2)):
        ps = [torch.nn.Parameter(t.clone()) for t in init]
        opt = make(ps)
        for it in range(40):
            opt.zero_grad()
            loss = (ps[0] ** 2).sum() + torch.sin(ps[1]).sum() * (1 + it % 3)  # ps[2]: no gradient (None)
            loss.backward()
            opt.step()
        runs.append([p.detach() for p in ps])
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-6)
    assert torch.equal(runs[0][2], init[2])  # a parameter without gradient does not move
    assert ours([torch.nn.Parameter(init[0].clone())])._raw is (False if path == "optimizer" else None)


@pytest.mark.parametrize(
    "make,D,layer,weights,R,inputs",
    [("bt", 8, "cp", "signed", 1, "gaussian"), ("bt", 8, "cp", "positive", 2, "gaussian"),
     ("lt", 5, "cp", "signed", 1, "gaussian"), ("lt", 4, "tucker", "signed", 1, "gaussian"),
     ("qt", 6, "cp", "signed", 1, "gaussian"), ("bt", 3, "cp", "signed", 3, "bernstein"),
     ("bt", 3, "cp", "positive", 1, "categorical"), ("bt", 1, "cp", "signed", 2, "gaussian")],
)
def test_partition_node_equals_layer_by_layer(make, D, layer, weights, R, inputs):
    # log Z as one node (NumPy pass on CPU, Gaussian Gram inside) equals the layer-by-layer torch pass
    # (pair_sum_layer per fold on log_gram()), in value and in every parameter's gradient
    gen = torch.Generator().manual_seed(D + R)
    rgs = [quad_tree(2, 3)] if make == "qt" else [
        {"bt": random_binary_tree, "lt": linear_tree}[make](D, r) for r in range(R)]
    kw = {"n_categories": [3] * rgs[0].n_variables} if inputs == "categorical" else {}
    m = TensorizedCircuit(rgs, n_units=3, weights=weights, squared=True, layer=layer, inputs=inputs,
                          generator=gen, **kw)
    if weights == "signed":
        with torch.no_grad():
            for w in m.sum_weights:
                w.uniform_(-1, 1, generator=gen)
    params = [p for p in m.parameters()]
    z1 = m.log_partition()
    z0 = m.log_pair_circuit(m.input.log_gram()[:, None])[:, 0]
    torch.testing.assert_close(z1, z0, rtol=1e-12, atol=1e-12)
    g1 = torch.autograd.grad(z1 @ torch.arange(1.0, R + 1, dtype=F64), params, allow_unused=True)
    g0 = torch.autograd.grad(z0 @ torch.arange(1.0, R + 1, dtype=F64), params, allow_unused=True)
    for a, b in zip(g1, g0, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_partition_node_gradcheck_and_float32():
    # the node's hand-written backward (Gaussian Gram included) passes gradcheck; float32 stays float32
    from mixstat.nn.circuits import _partition

    m = _model(4, 3, "signed", True, R=2, seed=5)

    def log_z(mu, var, *ws):
        return _partition._LogZ.apply(_partition._Structure(m), "gaussian", mu, var, *ws)

    xs = [m.input.mean.detach().clone(), m.input.var().detach().clone(), *[w.detach().clone() for w in m.sum_weights]]
    assert torch.autograd.gradcheck(log_z, tuple(x.requires_grad_(True) for x in xs))
    m32 = _model(4, 3, "signed", True, R=2, seed=5).to(torch.float32)
    z32 = m32.log_partition()
    assert z32.dtype == torch.float32
    torch.testing.assert_close(z32.double(), m.log_partition().detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", ["bt", "lt"])
def test_partition_node_torch_namespace_path(make, monkeypatch):
    # the node's code path for non-CPU tensors (the tensors' own namespace through array-api-compat, as on
    # CUDA) run here on CPU tensors: same log Z and gradients as the NumPy path
    import array_api_compat

    from mixstat.nn.circuits import _partition

    m = _model(5, 3, "signed", True, R=2, seed=2, rg=make)
    ps = list(m.parameters())
    z_np = m.log_partition()
    g_np = torch.autograd.grad(z_np.sum(), ps, allow_unused=True)
    monkeypatch.setattr(_partition, "_namespace",
                        lambda t: (array_api_compat.array_namespace(t), lambda a: a.detach(), lambda a: a))
    z_t = m.log_partition()
    g_t = torch.autograd.grad(z_t.sum(), ps, allow_unused=True)
    torch.testing.assert_close(z_t, z_np, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_t, g_np, strict=True):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
