"""Mixture of Tokens: G = 1 is a dense FFN, causality, group equivariance,
discrete routing as the zero-temperature limit."""

import pytest
import torch

from mixstat.nn import MixtureOfTokens

D64 = torch.float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_group_size_one_is_dense_ffn(dtype):
    torch.manual_seed(0)
    mot = MixtureOfTokens(6, 12, 3, group_size=1, dtype=dtype)
    x = torch.randn(5, 4, 6, dtype=dtype)
    W1 = torch.cat(list(mot.w1), dim=1)  # (d, d_ff)
    b1 = mot.b1.reshape(-1)
    W2 = torch.cat(list(mot.w2), dim=0)  # (d_ff, d)
    dense = torch.relu(x @ W1 + b1) @ W2 + mot.b2.sum(0)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(mot(x), dense, atol=tol, rtol=tol)


def test_no_information_crosses_positions():
    torch.manual_seed(1)
    mot = MixtureOfTokens(3, 6, 2, group_size=4, dtype=D64)
    x = torch.randn(8, 5, 3, dtype=D64)
    J = torch.autograd.functional.jacobian(mot, x)  # (B, T, d, B, T, d)
    T = x.shape[1]
    for t in range(T):
        for t2 in range(T):
            block = J[:, t, :, :, t2, :]
            if t == t2:
                continue
            assert block.abs().max() == 0
    # but tokens of the same position in one group do interact
    assert J[0, 0, :, 1, 0, :].abs().max() > 0
    # and groups do not
    assert J[0, 0, :, 4, 0, :].abs().max() == 0


def test_permutation_equivariance_inside_a_group():
    torch.manual_seed(2)
    mot = MixtureOfTokens(4, 8, 2, group_size=4, dtype=D64)
    x = torch.randn(4, 3, 4, dtype=D64)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(mot(x)[perm], mot(x[perm]))


def test_discrete_routing_is_zero_temperature_limit():
    torch.manual_seed(3)
    mot = MixtureOfTokens(4, 8, 2, group_size=4, temperature=1e-4, dtype=D64)
    x = torch.randn(8, 3, 4, dtype=D64)
    soft = mot(x)
    mot.set_discrete(True)
    hard = mot(x)
    torch.testing.assert_close(soft, hard, atol=1e-8, rtol=1e-8)
    w = mot.merge_weights(x)
    assert torch.all(w.sum(1) == 1) and set(w.unique().tolist()) <= {0.0, 1.0}


def test_learnable_temperature_gets_gradient_and_errors():
    mot = MixtureOfTokens(4, 8, 2, group_size=2, learnable_temperature=True)
    mot(torch.randn(4, 3, 4)).sum().backward()
    assert mot.log_temperature.grad is not None
    with pytest.raises(ValueError, match="multiple of group_size"):
        mot(torch.randn(3, 3, 4))
    with pytest.raises(ValueError, match="shape"):
        mot(torch.randn(4, 3, 5))
    with pytest.raises(ValueError, match="divisible"):
        MixtureOfTokens(4, 9, 2)
    with pytest.raises(ValueError, match="temperature"):
        MixtureOfTokens(4, 8, 2, temperature=0)


def test_transition_to_token_choice_copies_experts():
    torch.manual_seed(4)
    mot = MixtureOfTokens(4, 8, 2, group_size=1, dtype=D64)
    moe = mot.to_moe_layer(k=2)
    x = torch.randn(6, 4, dtype=D64)
    # with k = n_experts every expert is used; the softmax gates sum to one, so
    # the MoE output is a gate-weighted average of the same experts MoT (G=1) sums
    y = moe(x)
    r = moe.router_output
    per_expert = [torch.relu(x @ mot.w1[e] + mot.b1[e]) @ mot.w2[e] + mot.b2[e] for e in range(2)]
    ref = torch.zeros_like(x)
    for t, e, w in zip(r.token_index.tolist(), r.expert_index.tolist(), r.weight.tolist(), strict=True):
        ref[t] += w * per_expert[e][t]
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(r.logits, x @ mot.controller)
