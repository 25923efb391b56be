"""Transfusion: the attention mask (causal across, bidirectional within an
image), its effect on the model, both losses, packing and sampling."""

import pytest
import torch
import torch.nn.functional as F

from mixstat.nn import (
    TransfusionModel,
    pack_image_sequence,
    transfusion_attention_mask,
    transfusion_loss,
)

D64 = torch.float64


def test_mask_rule():
    ii = torch.tensor([-1, 0, 0, 0, -1, -1, 1, 1, -1])
    m = transfusion_attention_mask(ii)
    T = len(ii)
    for i in range(T):
        for j in range(T):
            expect = j <= i or (ii[i] >= 0 and ii[i] == ii[j])
            assert bool(m[i, j]) == expect, (i, j)
    mb = transfusion_attention_mask(torch.stack([ii, torch.full((T,), -1)]))
    assert torch.equal(mb[0], m) and torch.equal(mb[1], torch.ones(T, T).tril().bool())
    with pytest.raises(ValueError, match="1-D or 2-D"):
        transfusion_attention_mask(torch.zeros(1, 1, 3, dtype=torch.long))


def _model(seed=0):
    torch.manual_seed(seed)
    m = TransfusionModel(
        vocab_size=7,
        patch_dim=3,
        max_len=16,
        max_patches=4,
        d_model=16,
        n_heads=2,
        n_layers=2,
        dtype=D64,
    )
    torch.nn.init.normal_(m.patch_out.weight, std=0.3)
    return m


def test_mask_in_the_model():
    m = _model()
    prefix = torch.tensor([[1, 2, 3]])
    tokens, patches, ii = pack_image_sequence(
        prefix, 4, torch.tensor([[4, 5]]), torch.randn(1, 4, 3, dtype=D64)
    )
    assert ii.tolist() == [[-1, -1, -1, 0, 0, 0, 0, -1, -1]]
    t = torch.tensor([300])
    lg, ep = m(tokens, patches, ii, t)
    # a later patch changes an earlier patch's output (bidirectional image) ...
    p2 = patches.clone()
    p2[0, 6] += 1.0
    lg2, ep2 = m(tokens, p2, ii, t)
    assert (ep2[0, 3] - ep[0, 3]).abs().max() > 1e-6
    # ... but not the text before the image (causal across the sequence)
    torch.testing.assert_close(lg2[0, :3], lg[0, :3], rtol=0, atol=0)
    # a token after the image changes nothing before it
    tok3 = tokens.clone()
    tok3[0, 8] = 6
    lg3, ep3 = m(tok3, patches, ii, t)
    torch.testing.assert_close(ep3[0, :8], ep[0, :8], rtol=0, atol=0)
    torch.testing.assert_close(lg3[0, :8], lg[0, :8], rtol=0, atol=0)
    assert (lg3[0, 8] - lg[0, 8]).abs().max() > 1e-6


def test_losses_by_hand():
    torch.manual_seed(1)
    B, T, V, p = 2, 7, 5, 3
    ii = torch.tensor([[-1, -1, 0, 0, 0, -1, -1], [-1, 0, 0, 0, -1, -1, -1]])
    tokens = torch.randint(0, V, (B, T)).masked_fill(ii >= 0, -1)
    logits, eps_pred, eps = (
        torch.randn(B, T, V),
        torch.randn(B, T, p),
        torch.randn(B, T, p),
    )
    loss, lm, diff = transfusion_loss(
        logits, eps_pred, tokens, ii, eps, diffusion_weight=5.0
    )
    nll, n = 0.0, 0
    for b in range(B):
        for j in range(1, T):
            if ii[b, j] < 0 and ii[b, j - 1] < 0:
                nll -= F.log_softmax(logits[b, j - 1], -1)[tokens[b, j]]
                n += 1
    assert n == 4
    torch.testing.assert_close(lm, nll / n)
    sq = [
        ((eps_pred[b, j] - eps[b, j]) ** 2).mean()
        for b in range(B)
        for j in range(T)
        if ii[b, j] >= 0
    ]
    torch.testing.assert_close(diff, torch.stack(sq).mean())
    torch.testing.assert_close(loss, lm + 5.0 * diff)
    _, lm0, diff0 = transfusion_loss(
        logits,
        eps_pred,
        tokens.clamp(min=0),
        torch.full((B, T), -1),
        eps,
        diffusion_weight=1.0,
    )
    assert float(diff0) == 0.0 and float(lm0) > 0


def test_noising_and_training_loss():
    m = _model()
    x0 = torch.randn(3, 4, 3, dtype=D64)
    eps = torch.randn_like(x0)
    torch.testing.assert_close(
        m.add_noise(x0, torch.zeros(3, dtype=torch.long), eps), x0
    )
    ab = m.alpha_bar(torch.tensor([500]))
    torch.testing.assert_close(
        m.add_noise(x0[:1], torch.tensor([500]), eps[:1]),
        ab.sqrt() * x0[:1] + (1 - ab).sqrt() * eps[:1],
    )
    assert 0.0 < float(ab) < 1.0 and float(m.alpha_bar(torch.tensor([999]))) < 1e-3
    # a tiny batch is fitted: both losses fall
    tokens, patches, ii = pack_image_sequence(
        torch.tensor([[1, 2, 3], [1, 4, 3]]), 4, torch.tensor([[5], [5]]), x0[:2]
    )
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    first = None
    for _ in range(60):
        loss, lm, diff = m.training_loss(
            tokens, patches, ii, t=torch.tensor([100, 100]), generator=g
        )
        first = first or (lm.item(), diff.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert lm.item() < 0.5 * first[0] and diff.item() < first[1]


def test_sampling_and_next_token():
    m = _model()
    tokens, patches, ii = pack_image_sequence(
        torch.tensor([[1, 2, 3]] * 2), 4, patch_dim=3
    )
    g = torch.Generator().manual_seed(0)
    out = m.sample_image(tokens, ii, n_steps=5, generator=g)
    assert out.shape == (2, 7, 3)
    assert torch.all(out[:, :3] == 0) and float(out.abs().max()) <= 1.0
    unc = tokens.clone()
    unc[:, 1] = 6
    out2 = m.sample_image(
        tokens,
        ii,
        n_steps=5,
        guidance_scale=2.0,
        uncond_tokens=unc,
        generator=torch.Generator().manual_seed(0),
    )
    assert out2.shape == out.shape
    tok, pat, ii2 = pack_image_sequence(
        torch.tensor([[1, 3]]), 4, torch.tensor([[5]]), torch.randn(1, 4, 3, dtype=D64)
    )
    assert m.next_token_logits(tok, pat, ii2).shape == (1, 7)
    with pytest.raises(ValueError, match="uncond_tokens"):
        m.sample_image(tokens, ii, n_steps=2, guidance_scale=1.0)
    with pytest.raises(ValueError, match="max_len"):
        m(
            torch.zeros(1, 20, dtype=torch.long),
            torch.zeros(1, 20, 3, dtype=D64),
            torch.full((1, 20), -1),
            torch.tensor([0]),
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_paths_with_a_cpu_generator():
    from mixstat.nn import MixtureOfStatesDenoiser

    m = _model().cuda()
    tokens, patches, ii = pack_image_sequence(
        torch.tensor([[1, 2, 3]] * 2, device="cuda"), 4, patch_dim=3
    )
    g = torch.Generator().manual_seed(0)
    loss, _, _ = m.training_loss(tokens, patches.double(), ii, generator=g)
    loss.backward()
    out = m.sample_image(tokens, ii, n_steps=3, generator=g)
    assert out.device.type == "cuda"
    mos = MixtureOfStatesDenoiser(
        6, 2, 3, 4, d_und=8, n_und_layers=2, d_gen=8, n_gen_layers=2
    ).cuda()
    text = torch.tensor([[1, 2]], device="cuda")
    mos.training_loss(text, torch.randn(1, 4, 3, device="cuda"), generator=g).backward()
    assert mos.sample(text, n_steps=3, generator=g).device.type == "cuda"
