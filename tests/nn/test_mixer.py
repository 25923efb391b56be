import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixstat.nn import MixERLayer  # noqa: E402
from mixstat.nn.mixer import BatchedContextExperts, rk4_odeint  # noqa: E402

torch.set_num_threads(1)


def test_rk4_linear_ode_fourth_order():
    A = torch.tensor([[0.0, 1.0], [-2.0, -0.1]], dtype=torch.float64)
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 5, 11, dtype=torch.float64)
    exact = torch.stack([x0[0] @ torch.linalg.matrix_exp(A * s).T for s in t])
    errs = [(rk4_odeint(lambda x: x @ A.T, x0, t, substeps=m)[0] - exact).abs().max().item()
            for m in (1, 2)]
    assert errs[0] < 5e-2
    assert 10 < errs[0] / errs[1] < 22  # halving h divides the error by ~2^4


@pytest.mark.parametrize("style", ["coda", "geps", "ncf"])
def test_batched_experts_equal_row_by_row(style):
    torch.manual_seed(0)
    ex = BatchedContextExperts(3, 2, 4, hidden=8, depth=3, style=style, same_init=False)
    ctx = torch.randn(5, 4)
    idx = torch.tensor([0, 2, 1, 2, 0])
    x = torch.randn(5, 7, 2)
    out = ex.prepare(ctx, idx)(x)
    for b in range(5):
        one = ex.prepare(ctx[b:b + 1], idx[b:b + 1])(x[b:b + 1])
        torch.testing.assert_close(out[b:b + 1], one)
    # gathered expansion (rows) equals building every row separately
    rows = torch.tensor([0, 0, 3, 4])
    got = ex.prepare(ctx, idx, rows)(x[:4, :1])
    want = ex.prepare(ctx[rows], idx[rows])(x[:4, :1])
    torch.testing.assert_close(got, want)


def test_coda_is_root_plus_hypernetwork():
    torch.manual_seed(0)
    ex = BatchedContextExperts(2, 2, 3, hidden=5, depth=2, style="coda", same_init=False)
    ctx = torch.randn(1, 3)
    k = 1
    x = torch.randn(1, 4, 2)
    W0 = ex.W[0][k] + (ex.Hw[0][k] @ ctx[0]).view(2, 5)
    b0 = ex.b[0][k] + ex.Hb[0][k] @ ctx[0]
    W1 = ex.W[1][k] + (ex.Hw[1][k] @ ctx[0]).view(5, 2)
    b1 = ex.b[1][k] + ex.Hb[1][k] @ ctx[0]
    want = torch.nn.functional.silu(x[0] @ W0 + b0) @ W1 + b1
    got = ex.prepare(ctx, torch.tensor([k]))(x)[0]
    torch.testing.assert_close(got, want)


def test_same_expert_init_gives_identical_experts():
    L = MixERLayer(3, 4, 2, 2, hidden=8)
    with torch.no_grad():
        L.contexts.normal_(0, 0.1)
    x = torch.randn(8, 5, 2)
    t = torch.linspace(0, 1, 5)
    env = torch.arange(4).repeat(2)
    # split context: expert k sees chunk k, so give every chunk the same values
    with torch.no_grad():
        L.contexts.copy_(L.contexts[:, :2].repeat(1, 3))
    losses = L.expert_losses(x, t, env)
    assert losses.shape == (4, 3)
    torch.testing.assert_close(losses[:, 0], losses[:, 1])
    torch.testing.assert_close(losses[:, 0], losses[:, 2])


def test_forward_grouped_equals_ungrouped():
    torch.manual_seed(1)
    L = MixERLayer(2, 3, 2, 2, hidden=8, same_expert_init=False)
    with torch.no_grad():
        L.contexts.normal_()
    t = torch.linspace(0, 1, 4)
    x0 = torch.randn(6, 2)
    env = torch.tensor([0, 1, 2, 0, 1, 2])  # equal groups: batched per environment
    out = L(x0, t, env)
    for i in range(6):  # one trajectory at a time
        torch.testing.assert_close(out[i:i + 1], L(x0[i:i + 1], t, env[i:i + 1]))
    env2 = torch.tensor([0, 0, 0, 1, 2, 2])  # unequal groups: per-trajectory rows
    out2 = L(x0, t, env2)
    for i in range(6):
        torch.testing.assert_close(out2[i:i + 1], L(x0[i:i + 1], t, env2[i:i + 1]))


def test_gradients_by_gate_kind():
    t = torch.linspace(0, 1, 4)
    x = torch.randn(4, 4, 2)
    env = torch.arange(4)
    for gate in ["kmeans_lstsq", "fixed", "softmax_gd"]:
        L = MixERLayer(2, 4, 2, 2, hidden=8, gate=gate)
        loss = ((L(x[:, 0], t, env) - x) ** 2).mean()
        loss.backward()
        assert L.contexts.grad is not None
        if gate == "softmax_gd":
            assert isinstance(L.gate_weight, torch.nn.Parameter)
            assert L.gate_weight.grad.abs().sum() > 0
        else:  # a buffer: the top-1 output is unscaled, the gate gets no gradient
            assert not L.gate_weight.requires_grad
            assert "gate_weight" not in dict(L.named_parameters())


def test_gate_update_routes_planted_contexts_and_permutation():
    L = MixERLayer(3, 9, 2, 1, hidden=4)
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(3), 3)
    centers = 0.5 * np.eye(3)
    ctx = centers[groups] + 0.01 * rng.normal(size=(9, 3))
    with torch.no_grad():
        L.contexts.copy_(torch.tensor(ctx, dtype=torch.float32))
    planted = np.array([1, 2, 0])
    losses = np.ones((9, 3))
    losses[np.arange(9), planted[groups]] = 0.0
    res = L.gate_update(torch.tensor(losses), random_state=0, init="k-means++")
    assert res.updated and L.n_gate_updates == 1
    np.testing.assert_array_equal(L.route(L.contexts).numpy(), planted[groups])
    # permuting environments permutes the routing
    perm = torch.as_tensor(rng.permutation(9))
    np.testing.assert_array_equal(L.route(L.contexts[perm]).numpy(), planted[groups][perm.numpy()])
    # a skipped update keeps the gate and forgets the centres
    W = L.gate_weight.clone()
    with torch.no_grad():
        L.contexts.zero_()
    res = L.gate_update(torch.tensor(losses), random_state=0)
    assert not res.updated and L._centers is None
    torch.testing.assert_close(L.gate_weight, W)
