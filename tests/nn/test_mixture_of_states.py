"""Mixture of States: the router picks the top-k layers, only the selected
states get gradients, epsilon-greedy explores at rate epsilon, and a small
two-tower model learns to use its condition tokens."""

import pytest
import torch

from mixstat.nn import MixtureOfStatesDenoiser, MixtureOfStatesRouter, select_states

D64 = torch.float64


@pytest.mark.parametrize("k", [1, 2, 3])
def test_router_picks_top_k_layers(k):
    torch.manual_seed(0)
    Lu, B, T, Lg, d = 5, 2, 3, 4, 6
    states = torch.randn(Lu, B, T, d, dtype=D64)
    logits = torch.randn(B, T, Lg, Lu, dtype=D64)
    mixed, r = select_states(states, logits, k)
    p = torch.softmax(logits, -1)
    for b in range(B):
        for t in range(T):
            for j in range(Lg):
                top = torch.argsort(logits[b, t, j], descending=True)[:k]
                assert r.indices[b, t, j].tolist() == top.tolist()
                g = p[b, t, j, top]
                g = g / g.sum() if k > 1 else g
                torch.testing.assert_close(r.gates[b, t, j], g)
                expect = sum(g[i] * states[top[i], b, t] for i in range(k))
                torch.testing.assert_close(mixed[j, b, t], expect)
    assert not r.explored.any()


def test_gradient_only_through_selected_states():
    torch.manual_seed(1)
    Lu, B, T, d = 6, 2, 4, 3
    states = torch.randn(Lu, B, T, d, dtype=D64, requires_grad=True)
    logits = torch.randn(B, T, 1, Lu, dtype=D64, requires_grad=True)
    mixed, r = select_states(states, logits, 2)
    mixed.pow(2).sum().backward()
    for b in range(B):
        for t in range(T):
            chosen = set(r.indices[b, t, 0].tolist())
            for layer in range(Lu):
                nz = bool(states.grad[layer, b, t].abs().max() > 0)
                assert nz == (layer in chosen)
                # renormalised top-2 gates = softmax over the chosen logits only
                # (exactly zero in exact arithmetic; the full softmax leaves ~1e-17)
                assert (logits.grad[b, t, 0, layer].abs() > 1e-12) == (layer in chosen)


def test_epsilon_greedy_exploration_rate():
    torch.manual_seed(2)
    Lu, B, T, Lg = 8, 40, 50, 5
    states = torch.randn(Lu, B, T, 2)
    logits = torch.randn(B, T, Lg, Lu)
    g = torch.Generator().manual_seed(0)
    mixed, r = select_states(states, logits, 2, epsilon=0.3, generator=g)
    rate = r.explored.float().mean().item()
    assert abs(rate - 0.3) < 0.02  # 10 000 draws: sd 0.005
    greedy = torch.topk(logits, 2, -1).indices
    assert torch.equal(r.indices[~r.explored], greedy[~r.explored])
    # explored picks are uniform over the layers: each layer in k/Lu = 1/4 of them
    counts = torch.bincount(r.indices[r.explored].reshape(-1), minlength=Lu).float()
    frac = counts / r.explored.sum()
    assert torch.all((frac - 0.25).abs() < 0.04)
    # distinct layers within a pick, gates sum to one
    picks = r.indices[r.explored]
    assert torch.all(picks[:, 0] != picks[:, 1])
    torch.testing.assert_close(r.gates.sum(-1), torch.ones(B, T, Lg))
    # the module explores only while training
    router = MixtureOfStatesRouter(2, Lu, Lg, k=2, epsilon=1.0)
    router.eval()
    _, r_eval = router(states)
    assert not r_eval.explored.any()
    router.train()
    _, r_train = router(states)
    assert r_train.explored.all()


def test_router_depends_on_the_condition_and_validates():
    torch.manual_seed(3)
    router = MixtureOfStatesRouter(4, 3, 2, k=1, d_cond=5)
    states = torch.randn(3, 2, 6, 4)
    c1, c2 = torch.randn(2, 5), torch.randn(2, 5)
    _, r1 = router(states, c1)
    _, r2 = router(states, c2)
    assert (r1.logits - r2.logits).abs().max() > 1e-4
    with pytest.raises(ValueError, match="cond"):
        router(states)
    with pytest.raises(ValueError, match="k must"):
        MixtureOfStatesRouter(4, 3, 2, k=4)
    with pytest.raises(ValueError, match="logits must"):
        select_states(states, torch.randn(2, 6, 1, 2), 1)


def test_two_tower_model_learns_from_its_condition():
    """Text token c in {0, 1, 2, 3} sets the image to pattern c; the trained
    denoiser must do better with the right text than with shuffled text."""
    torch.manual_seed(4)
    P, p = 4, 4
    patterns = torch.sign(torch.randn(4, P, p))
    model = MixtureOfStatesDenoiser(
        vocab_size=6,
        max_text_len=3,
        patch_dim=p,
        n_patches=P,
        d_und=16,
        n_und_layers=3,
        d_gen=16,
        n_gen_layers=2,
        n_heads=2,
        k=2,
        epsilon=0.1,
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        c = torch.randint(0, 4, (32,), generator=g)
        text = torch.stack([torch.full_like(c, 4), c, torch.full_like(c, 5)], 1)
        loss = model.training_loss(text, patterns[c], generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    c = torch.arange(4).repeat(16)
    text = torch.stack([torch.full_like(c, 4), c, torch.full_like(c, 5)], 1)
    t = torch.full((64,), 600)
    eps = torch.randn(64, P, p, generator=g)
    ab = model.alpha_bar(t)[:, None, None].float()
    xt = ab.sqrt() * patterns[c] + (1 - ab).sqrt() * eps
    with torch.no_grad():
        right = (model(text, xt, t) - eps).pow(2).mean()
        wrong = (
            (model(text[torch.randperm(64, generator=g)], xt, t) - eps).pow(2).mean()
        )
    assert right < 0.8 * wrong
    assert model.routing.indices.shape == (64, 3, 2, 2)
    samples = model.sample(text[:4], n_steps=10, generator=g)
    assert samples.shape == (4, P, p)
    frozen = MixtureOfStatesDenoiser(
        6,
        3,
        p,
        P,
        d_und=8,
        n_und_layers=2,
        d_gen=8,
        n_gen_layers=2,
        freeze_understanding=True,
    )
    frozen.training_loss(text[:4], patterns[c[:4]]).backward()
    assert all(q.grad is None for q in frozen.und_blocks.parameters())
    assert frozen.router.net[0].weight.grad is not None
