"""LoRA, MiLoRA and SVDiff: one expert is LoRA, routing once per prompt,
gradients only in adapters and routers, merge/unmerge, spectral shifts."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixstat.nn import (
    LoRALinear,
    MiLoRA,
    MiLoRALinear,
    SpectralShift,
    apply_spectral_shifts,
    cut_mix,
    unmix_loss,
)

D64 = torch.float64


class TinyLM(nn.Module):
    """A 2-layer causal transformer with named q, k, v, o, up, down linears."""

    def __init__(self, vocab=11, d=16, n_layers=2, max_len=32):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList()
        for _ in range(n_layers):
            b = nn.Module()
            b.norm1, b.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
            b.q, b.k, b.v, b.o = (nn.Linear(d, d) for _ in range(4))
            b.up, b.down = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
            self.blocks.append(b)
        self.head = nn.Linear(d, vocab)
        self.n_heads = 2

    def forward(self, ids):
        B, T = ids.shape
        h = self.emb(ids) + self.pos(torch.arange(T))
        for b in self.blocks:
            z = b.norm1(h)
            q, k, v = (
                m(z).reshape(B, T, self.n_heads, -1).transpose(1, 2)
                for m in (b.q, b.k, b.v)
            )
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            h = h + b.o(a.transpose(1, 2).reshape(B, T, -1))
            h = h + b.down(F.gelu(b.up(b.norm2(h))))
        return self.head(h)


def _lm(seed=0, dtype=D64):
    torch.manual_seed(seed)
    return TinyLM().to(dtype)


def _randomise_B(wrapper, seed=1):
    g = torch.Generator().manual_seed(seed)
    for layer in wrapper.layers.values():
        layer.lora_B.data = torch.randn(
            layer.lora_B.shape, generator=g, dtype=layer.lora_B.dtype
        )


def test_one_expert_equals_lora():
    base = _lm()
    ref = copy.deepcopy(base)
    mi = MiLoRA(base, ["q", "v", "down"], n_experts=1, rank=3, alpha=6.0)
    _randomise_B(mi)
    for name, layer in mi.layers.items():
        lora = LoRALinear(ref.get_submodule(name), rank=3, alpha=6.0)
        lora.lora_A.data = layer.lora_A.data[0].clone()
        lora.lora_B.data = layer.lora_B.data[0].clone()
        parent, _, child = name.rpartition(".")
        setattr(ref.get_submodule(parent), child, lora)
    ids = torch.randint(0, 11, (3, 7))
    torch.testing.assert_close(mi(ids), ref(ids), rtol=1e-12, atol=1e-12)
    # and the adapters change the output (the check is not vacuous)
    plain = _lm()
    assert (mi(ids) - plain(ids)).abs().max() > 1e-3


@pytest.mark.parametrize("group_by", [None, lambda name: name.split(".")[1]])
def test_router_called_once_per_prompt_in_generation(group_by):
    mi = MiLoRA(
        _lm(),
        ["q", "k", "v", "o", "up", "down"],
        n_experts=1 if group_by else 3,
        rank=2,
        k=2,
        group_by=group_by,
    )
    _randomise_B(mi)
    n_groups = len(mi.routers)
    assert n_groups == (2 if group_by else 12)
    prompt = torch.randint(0, 11, (2, 5))
    out = mi.generate(prompt, max_new_tokens=6)
    assert out.shape == (2, 11)
    assert mi.router_calls() == n_groups  # once per prompt, not once per token
    out2 = mi.generate(prompt, max_new_tokens=3)
    assert mi.router_calls() == 2 * n_groups
    torch.testing.assert_close(out2, out[:, :8])
    # per-token routed MoE-LoRA: the router runs on every decoding step
    tok = MiLoRA(
        _lm(),
        ["q", "k", "v", "o", "up", "down"],
        n_experts=3,
        rank=2,
        k=2,
        routing="token",
    )
    tok.generate(prompt, max_new_tokens=6)
    assert tok.router_calls() == 12 * 6


def test_gates_depend_only_on_the_prompt():
    mi = MiLoRA(_lm(), ["q", "v"], n_experts=4, rank=2, k=2)
    _randomise_B(mi)
    prompt = torch.randint(0, 11, (3, 6))
    mi.generate(prompt, max_new_tokens=4)
    after = [g.state.gates.clone() for g in mi._groups]
    # routing a batch whose continuations differ: bit-identical gates for equal
    # shapes, equal to rounding (1e-12) against the prompt-only routing
    seen = []
    for seed in (1, 2):
        cont = torch.randint(
            0, 11, (3, 4), generator=torch.Generator().manual_seed(seed)
        )
        mi(torch.cat([prompt, cont], 1), prompt_lengths=torch.full((3,), 6))
        seen.append([g.state.gates.detach().clone() for g in mi._groups])
    for g1, g2, a in zip(seen[0], seen[1], after, strict=False):
        assert torch.equal(g1, g2)
        torch.testing.assert_close(g1, a, rtol=1e-12, atol=1e-12)
        assert torch.equal((g1 > 0).sum(-1), torch.full((3,), 2))
        torch.testing.assert_close(g1.sum(-1), torch.ones(3, dtype=D64))


def test_gradients_reach_only_adapters_and_router():
    mi = MiLoRA(_lm(), ["q", "v", "up"], n_experts=3, rank=2, k=1)
    _randomise_B(mi)
    ids = torch.randint(0, 11, (4, 8))
    loss = (
        F.cross_entropy(
            mi(ids, prompt_lengths=[3, 4, 5, 8])[:, :-1].reshape(-1, 11),
            ids[:, 1:].reshape(-1),
        )
        + mi.aux_loss
    )
    loss.backward()
    trainable = {n for n, p in mi.named_parameters() if p.requires_grad}
    for n, p in mi.named_parameters():
        if n in trainable:
            assert "lora_" in n or n.startswith("routers."), n
            assert p.grad is not None and p.grad.abs().max() > 0, n
        else:
            assert p.grad is None, n
    assert len([n for n in trainable if n.startswith("routers.")]) == 6


@pytest.mark.parametrize("routing_kw", [dict(n_experts=1), dict(n_experts=4, k=2)])
def test_merge_unmerge_round_trip(routing_kw):
    mi = MiLoRA(_lm(), ["q", "o", "down"], rank=2, **routing_kw)
    _randomise_B(mi)
    w0 = {n: lay.base.weight.clone() for n, lay in mi.layers.items()}
    prompt = torch.randint(0, 11, (1, 6))
    y = mi(prompt)  # routes from the prompt, caches the gates
    mi.merge()
    assert all(layer.merged for layer in mi.layers.values())
    torch.testing.assert_close(mi.model(prompt), y, rtol=1e-12, atol=1e-12)
    mi.unmerge()
    for n, layer in mi.layers.items():
        torch.testing.assert_close(layer.base.weight, w0[n], rtol=0, atol=1e-14)
    torch.testing.assert_close(mi.model(prompt), y, rtol=1e-12, atol=1e-12)


def test_lora_merge_unmerge():
    torch.manual_seed(0)
    lin = nn.Linear(5, 4).double()
    w0 = lin.weight.clone()
    lora = LoRALinear(lin, rank=2, alpha=4)
    lora.lora_B.data.normal_()
    x = torch.randn(3, 5, dtype=D64)
    y = lora(x)
    torch.testing.assert_close(y, x @ (w0 + 2 * lora.lora_B @ lora.lora_A).T + lin.bias)
    lora.merge()
    torch.testing.assert_close(lora(x), y)
    lora.unmerge()
    torch.testing.assert_close(lin.weight, w0, rtol=0, atol=1e-14)


def test_unchosen_experts_contribute_nothing():
    mi = MiLoRA(
        _lm(),
        ["q", "k", "v", "o", "up", "down"],
        rank=2,
        k=2,
        group_by=lambda n: n.split(".")[1],
    )
    _randomise_B(mi)
    ids = torch.randint(0, 11, (1, 6))
    y = mi(ids)
    gates = {g.name: g.state.gates[0] for g in mi._groups}
    for layer in mi.layers.values():
        if gates[layer.group.name][layer.slot_offset] == 0:
            layer.lora_B.data.mul_(1e6)  # a huge but unused adapter
    torch.testing.assert_close(mi(ids), y, rtol=1e-12, atol=1e-12)


def test_milora_errors():
    with pytest.raises(ValueError, match="no nn.Linear"):
        MiLoRA(_lm(), ["nothing"])
    with pytest.raises(ValueError, match="k must satisfy"):
        MiLoRA(_lm(), ["q"], n_experts=2, k=3)
    with pytest.raises(ValueError, match="routing"):
        MiLoRA(_lm(), ["q"], routing="layer")
    mi = MiLoRA(_lm(), ["q", "o"], group_by=lambda n: "all")
    mi(torch.randint(0, 11, (2, 4)))  # the anchor (blocks.0.q) runs first
    with pytest.raises(ValueError, match="prompt_lengths"):
        mi(torch.randint(0, 11, (2, 4)), prompt_lengths=[0, 4])

    class Backwards(nn.Module):  # registered second, called first
        def __init__(self):
            super().__init__()
            self.second, self.first = nn.Linear(3, 3), nn.Linear(3, 3)

        def forward(self, x):
            return self.second(self.first(x))

    bw = MiLoRA(Backwards(), ["first", "second"], group_by=lambda n: "g")
    with pytest.raises(RuntimeError, match="ran before the group's anchor"):
        bw(torch.randn(2, 4, 3))
    layer = MiLoRALinear(nn.Linear(3, 3))
    with pytest.raises(RuntimeError, match="routing group"):
        layer(torch.randn(2, 3))


# ---------------------------------------------------------------- SVDiff
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (D64, 1e-12)])
@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Linear(7, 5),
        lambda: nn.Linear(4, 9),
        lambda: nn.Conv2d(3, 8, 3, padding=1),
        lambda: nn.Conv2d(4, 4, 3, stride=2, groups=2),
        lambda: nn.Conv1d(2, 6, 5),
    ],
)
def test_spectral_shift_zero_reproduces_layer(make, dtype, tol):
    torch.manual_seed(0)
    base = make().to(dtype)
    ss = SpectralShift(copy.deepcopy(base))
    if isinstance(base, nn.Linear):
        x = torch.randn(6, base.in_features, dtype=dtype)
    elif isinstance(base, nn.Conv1d):
        x = torch.randn(2, base.in_channels, 11, dtype=dtype)
    else:
        x = torch.randn(2, base.in_channels, 8, 8, dtype=dtype)
    torch.testing.assert_close(ss(x), base(x), rtol=tol, atol=tol)
    m = base.weight.shape[0]
    n = base.weight[0].numel()
    assert [p.numel() for p in ss.parameters() if p.requires_grad] == [min(m, n)]


def test_spectral_shift_moves_singular_values():
    torch.manual_seed(1)
    ss = SpectralShift(nn.Linear(6, 4).double())
    delta = torch.tensor([0.3, -0.1, 0.05, -10.0], dtype=D64)
    ss.delta.data = delta
    sv = torch.linalg.svdvals(ss.weight())
    expect = torch.sort(torch.relu(ss.S + delta), descending=True).values
    torch.testing.assert_close(sv, expect, rtol=1e-10, atol=1e-10)
    ss.delta.data = (
        -ss.S.clone()
    )  # every singular value clipped at 0: only the bias is left
    x = torch.randn(3, 6, dtype=D64)
    torch.testing.assert_close(ss(x), ss.base.bias.expand(3, 4))


def test_apply_spectral_shifts_parameter_count_and_gradients():
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 16, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    ).double()
    ref = copy.deepcopy(net)
    apply_spectral_shifts(net)
    x = torch.randn(5, 1, 4, 4, dtype=D64)
    torch.testing.assert_close(net(x), ref(x), rtol=1e-10, atol=1e-10)
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == min(8, 9) + min(32, 128) + min(10, 32)
    net(x).pow(2).sum().backward()
    for n, p in net.named_parameters():
        assert (p.grad is not None) == n.endswith("delta"), n
    with pytest.raises(ValueError, match="base must be"):
        SpectralShift(nn.ReLU())


def test_cut_mix_and_unmix_loss():
    torch.manual_seed(3)
    a, b = torch.randn(2, 3, 4, 6), torch.randn(2, 3, 4, 6)
    mixed, ma, mb = cut_mix(a, b)
    assert torch.equal(ma, ~mb) and int(ma.sum()) == 12
    assert torch.equal(mixed[..., :3], a[..., :3]) and torch.equal(
        mixed[..., 3:], b[..., 3:]
    )
    mixed2, ma2, _ = cut_mix(a, b, ratio=0.25, dim=-2)
    assert torch.equal(mixed2[..., :1, :], a[..., :1, :]) and int(ma2.sum()) == 6
    # attention of token 1 only inside a's region and token 2 only inside b's: zero loss
    attn = torch.zeros(2, 2, 24, 4)
    attn[..., ma.reshape(-1), 1] = 0.7
    attn[..., mb.reshape(-1), 2] = 0.4
    assert float(unmix_loss(attn, 1, 2, ma, mb)) == 0.0
    attn[..., mb.reshape(-1), 1] = 0.2
    torch.testing.assert_close(unmix_loss(attn, 1, 2, ma, mb), torch.tensor(0.04))
    with pytest.raises(ValueError, match="query positions"):
        unmix_loss(attn[..., :5, :], 1, 2, ma, mb)
    with pytest.raises(ValueError, match="ratio"):
        cut_mix(a, b, ratio=1.0)


@pytest.mark.parametrize("n_experts,k", [(1, 1), (4, 2), (3, 3)])
def test_prompt_factors_equal_the_reference_sum(n_experts, k):
    """Fast path (per-sequence stacked factors, cached in decoding) equals
    sum_e g_e B_e A_e x computed expert by expert."""
    mi = MiLoRA(_lm(), ["q", "up"], n_experts=n_experts, rank=2, k=k)
    _randomise_B(mi)
    ids = torch.randint(0, 11, (3, 5))
    layer = mi.layers["blocks.0.up"]
    seen = {}
    layer.register_forward_hook(lambda m, i, o: seen.update(x=i[0], y=o))
    mi(ids)
    g = layer.group.state.gates
    ref = layer.base(seen["x"]) + layer.adapter_output(seen["x"], g)
    torch.testing.assert_close(seen["y"], ref, rtol=1e-12, atol=1e-12)
    by_hand = layer.base(seen["x"]) + sum(
        layer.scaling
        * g[:, None, e, None]
        * (seen["x"] @ layer.lora_A[e].T @ layer.lora_B[e].T)
        for e in range(n_experts)
    )
    torch.testing.assert_close(seen["y"], by_hand, rtol=1e-12, atol=1e-12)
    # no-grad decoding reuses the cached factors and gives the same output
    with torch.no_grad():
        a = mi.model(ids)
        assert layer._factor_cache is not None
        b = mi.model(ids)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
