r"""Dense <-> mixture-of-experts conversion of two-layer feed-forward blocks.

Dense to MoE (Dense2MoE, Zheng et al. 2025). A dense FFN
:math:`f(x) = W_2\,\phi(W_1 x + b_1) + b_2` with hidden width :math:`h` is a
sum over its hidden neurons, so any partition :math:`S_1,\dots,S_E` of the
neurons splits it exactly into experts

.. math::
    f(x) = \sum_{e=1}^{E} \Big(W_2[:, S_e]\,\phi(W_1[S_e,:]x + b_1[S_e])
    + b_2/E\Big),

i.e. an MoE whose gates are all one reproduces the dense layer. The neurons
are ranked by the first-order Taylor importance on calibration data

.. math:: I_j = \Big|\sum_{n} a_{nj}\,\frac{\partial L}{\partial a_{nj}}\Big|,
    \qquad a_{nj} = \phi(W_1 x_n + b_1)_j,

(the first-order change of the loss when neuron :math:`j` is removed;
Molchanov et al. 2017), or, without data, by the weight norm
:math:`I_j = \lVert W_1[j,:]\rVert_2\,\lVert W_2[:,j]\rVert_2`; expert 1 holds
the most important :math:`h/E` neurons (Dense2MoE's shared-expert candidate),
expert 2 the next ones, and so on.

MoE to dense (OneS "knowledge gathering", Xue et al. 2022). The experts'
weight matrices :math:`W^{(e)}` are merged into one dense layer by averaging,
:math:`\bar W = \frac1E\sum_e W^{(e)}`, or by SVD knowledge gathering: each
:math:`W^{(e)}` is replaced by its best rank-:math:`r` approximation
:math:`[W^{(e)}]_r = U_r\Sigma_r V_r^\top` before averaging. By the
Eckart-Young theorem the per-expert error is the singular-value tail
:math:`\lVert W^{(e)} - [W^{(e)}]_r\rVert_F^2 = \sum_{i>r}\sigma_i^2`.

References
----------
Zheng, Ren, Xia, Xiao & Xie (2025), "Dense2MoE: restructuring diffusion
transformer to MoE for efficient text-to-image generation", ICCV,
arXiv:2510.09094.
Molchanov, Tyree, Karras, Aila & Kautz (2017), "Pruning convolutional neural
networks for resource efficient inference", ICLR (Taylor criterion).
Xue, He, Ren, Lou & You (2022), "One student knows all experts know: from
sparse to dense", arXiv:2201.10890.
Eckart & Young (1936), "The approximation of one matrix by another of lower
rank", Psychometrika 1(3).
"""

from __future__ import annotations

import torch
from torch import nn

from .gating import RouterOutput
from .moe import _ACTIVATIONS, MoELayer

__all__ = [
    "UnitGateRouter",
    "dense_to_moe",
    "moe_to_dense",
    "neuron_importance",
    "partition_neurons",
    "svd_knowledge_gathering",
]

_MODULE_ACTIVATIONS = {
    nn.ReLU: "relu",
    nn.SiLU: "silu",
    nn.Tanh: "tanh",
    nn.Identity: "identity",
}


class UnitGateRouter(nn.Module):
    """Router that sends every token to every expert with gate weight 1.

    With it, an MoE layer built by :func:`dense_to_moe` computes the dense FFN
    (up to floating-point summation order). It has no parameters.
    """

    def __init__(self, n_experts):
        super().__init__()
        if (
            isinstance(n_experts, bool)
            or int(n_experts) != n_experts
            or int(n_experts) < 1
        ):
            raise ValueError(f"n_experts must be a positive integer, got {n_experts!r}")
        self.n_experts = int(n_experts)

    def forward(self, x):
        n, E = x.shape[0], self.n_experts
        logits = x.new_zeros(n, E)
        tok = torch.arange(n, device=x.device).repeat_interleave(E)
        exp = torch.arange(E, device=x.device).repeat(n)
        zero = x.new_zeros(())
        return RouterOutput(
            logits=logits,
            probs=logits + 1.0 / E,
            token_index=tok,
            expert_index=exp,
            weight=x.new_ones(n * E),
            capacity=None,
            n_dropped=0,
            balance_loss=zero + 1.0,
            z_loss=zero + float(torch.log(torch.tensor(float(E))) ** 2),
        )


def _unpack_ffn(ffn_or_weights, activation):
    """-> (W1 (h, d), b1 (h,) or None, W2 (d_out, h), b2 (d_out,) or None, act name)."""
    if isinstance(ffn_or_weights, nn.Sequential):
        mods = list(ffn_or_weights)
        if (
            len(mods) != 3
            or not isinstance(mods[0], nn.Linear)
            or not isinstance(mods[2], nn.Linear)
        ):
            raise ValueError(
                "ffn must be nn.Sequential(nn.Linear, activation, nn.Linear)"
            )
        act = mods[1]
        if isinstance(act, nn.GELU):
            if act.approximate != "none":
                raise ValueError(
                    "nn.GELU(approximate='tanh') is not supported; use the exact GELU"
                )
            name = "gelu"
        elif type(act) in _MODULE_ACTIVATIONS:
            name = _MODULE_ACTIVATIONS[type(act)]
        else:
            raise ValueError(
                f"unsupported activation module {act!r}; "
                "use GELU, ReLU, SiLU, Tanh or Identity"
            )
        l1, l2 = mods[0], mods[2]
        W1, b1, W2, b2 = l1.weight, l1.bias, l2.weight, l2.bias
    elif isinstance(ffn_or_weights, (tuple, list)) and len(ffn_or_weights) == 4:
        W1, b1, W2, b2 = ffn_or_weights
        name = activation
    else:
        raise ValueError(
            "ffn_or_weights must be nn.Sequential(Linear, activation, Linear) "
            "or a tuple "
            "(W1, b1, W2, b2) in nn.Linear layout (W1: (h, d), W2: (d_out, h))"
        )
    if name not in _ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}"
        )
    for nm, t in (("W1", W1), ("W2", W2)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2:
            raise ValueError(
                f"{nm} must be a 2-D tensor, got {getattr(t, 'shape', type(t))}"
            )
    h, d = W1.shape
    if W2.shape[1] != h:
        raise ValueError(
            f"W2 must have shape (d_out, {h}) to match W1 {tuple(W1.shape)}, "
            f"got {tuple(W2.shape)}"
        )
    if W2.shape[0] != d:
        raise ValueError(
            f"MoELayer needs d_out == d_model; W1 is {tuple(W1.shape)} "
            f"but W2 is {tuple(W2.shape)}"
        )
    if b1 is not None and tuple(b1.shape) != (h,):
        raise ValueError(f"b1 must have shape ({h},), got {tuple(b1.shape)}")
    if b2 is not None and tuple(b2.shape) != (d,):
        raise ValueError(f"b2 must have shape ({d},), got {tuple(b2.shape)}")
    ts = [t for t in (W1, b1, W2, b2) if t is not None]
    if len({t.dtype for t in ts}) != 1:
        raise ValueError("all FFN weights must have the same dtype")
    if not all(bool(torch.isfinite(t).all()) for t in ts):
        raise ValueError("the FFN weights contain NaN or inf")
    return (
        W1.detach(),
        None if b1 is None else b1.detach(),
        W2.detach(),
        None if b2 is None else b2.detach(),
        name,
    )


def neuron_importance(ffn_or_weights, calib_x=None, loss_fn=None, *, activation="gelu"):
    r"""Importance of each hidden neuron of a two-layer FFN.

    With calibration inputs, the Taylor importance
    :math:`I_j = |\sum_n a_{nj}\,\partial L/\partial a_{nj}|` of the hidden
    activations :math:`a = \phi(W_1x+b_1)`, with
    :math:`L = \mathrm{loss\_fn}(f(x))` (default
    :math:`\frac12\sum_n\lVert f(x_n)\rVert^2`, the output energy). Without
    data, :math:`I_j = \lVert W_1[j,:]\rVert\,\lVert W_2[:,j]\rVert`.

    Parameters
    ----------
    ffn_or_weights : nn.Sequential(Linear, act, Linear) or tuple (W1, b1, W2, b2)
    calib_x : Tensor of shape (n, d) or (..., d), optional
    loss_fn : callable(output) -> scalar Tensor, optional
    activation : str
        Used only with a weight tuple.

    Returns
    -------
    Tensor of shape (h,)
    """
    W1, b1, W2, b2, name = _unpack_ffn(ffn_or_weights, activation)
    if calib_x is None:
        return torch.linalg.vector_norm(W1, dim=1) * torch.linalg.vector_norm(W2, dim=0)
    if (
        not isinstance(calib_x, torch.Tensor)
        or calib_x.ndim < 1
        or calib_x.shape[-1] != W1.shape[1]
    ):
        raise ValueError(
            f"calib_x must be a tensor with last dimension {W1.shape[1]}, got "
            f"{getattr(calib_x, 'shape', type(calib_x))}"
        )
    if calib_x.dtype != W1.dtype:
        raise ValueError(
            f"calib_x has dtype {calib_x.dtype} but the FFN has {W1.dtype}"
        )
    x = calib_x.reshape(-1, W1.shape[1])
    if x.shape[0] == 0:
        raise ValueError("calib_x has no samples")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("calib_x contains NaN or inf")
    with torch.enable_grad():
        pre = x @ W1.T
        if b1 is not None:
            pre = pre + b1
        a = _ACTIVATIONS[name](pre).detach().requires_grad_(True)
        out = a @ W2.T
        if b2 is not None:
            out = out + b2
        loss = 0.5 * out.pow(2).sum() if loss_fn is None else loss_fn(out)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise ValueError("loss_fn must return a scalar tensor")
        (g,) = torch.autograd.grad(loss, a)
    return (a.detach() * g).sum(0).abs()


def partition_neurons(importance, n_experts):
    """Split neurons into ``n_experts`` groups by decreasing importance.

    Returns a LongTensor of shape (n_experts, ceil(h / n_experts)): row ``e``
    lists the neurons of expert ``e`` (expert 0 the most important ones),
    padded with ``-1`` when ``h`` is not a multiple of ``n_experts``. Ties are
    broken by neuron index (stable sort).
    """
    if not isinstance(importance, torch.Tensor) or importance.ndim != 1:
        raise ValueError("importance must be a 1-D tensor")
    h = importance.shape[0]
    if (
        isinstance(n_experts, bool)
        or int(n_experts) != n_experts
        or not 1 <= int(n_experts) <= h
    ):
        raise ValueError(
            f"n_experts must be an integer in [1, h={h}], got {n_experts!r}"
        )
    if not bool(torch.isfinite(importance).all()):
        raise ValueError("importance contains NaN or inf")
    E = int(n_experts)
    order = torch.sort(importance, descending=True, stable=True).indices
    size = -(-h // E)
    out = torch.full((E * size,), -1, dtype=torch.long, device=importance.device)
    out[:h] = order
    return out.reshape(E, size)


def dense_to_moe(
    ffn_or_weights,
    n_experts,
    calib_x=None,
    loss_fn=None,
    *,
    k=None,
    router="unit",
    activation="gelu",
    dispatch="auto",
):
    r"""Split a dense two-layer FFN into an :class:`~mixstat.nn.MoELayer`.

    Neurons are ranked by :func:`neuron_importance` (Taylor metric on
    ``calib_x``, weight norm without data) and cut into ``n_experts`` equal
    groups (:func:`partition_neurons`); expert :math:`e` gets
    ``w1[e] = W1[S_e].T``, ``b1[e] = b1[S_e]``, ``w2[e] = W2[:, S_e].T`` and
    ``b2[e] = b2 / E``. Padding neurons (when ``E`` does not divide ``h``)
    have zero weights and contribute nothing.

    Parameters
    ----------
    ffn_or_weights : nn.Sequential(Linear, act, Linear) or tuple (W1, b1, W2, b2)
        Weights in nn.Linear layout; the output width must equal the input.
    n_experts : int
    calib_x, loss_fn : see :func:`neuron_importance`
    k : int, optional
        Experts per token of a 'topk' router (default ``n_experts``).
    router : {'unit', 'topk'}, default='unit'
        'unit': :class:`UnitGateRouter`, every expert with gate 1, so the
        layer equals the dense FFN. 'topk': a fresh softmax top-k router (to
        be trained, e.g. by distillation as in Dense2MoE); its gates do not
        sum to the unit gates, so the output differs until trained.
    activation : str
        Used only with a weight tuple.
    dispatch : str
        Passed to :class:`~mixstat.nn.MoELayer`.

    Returns
    -------
    MoELayer
        With extra attributes ``expert_neurons`` (the partition) and
        ``neuron_importance``.
    """
    W1, b1, W2, b2, name = _unpack_ffn(ffn_or_weights, activation)
    imp = neuron_importance((W1, b1, W2, b2), calib_x, loss_fn, activation=name)
    parts = partition_neurons(imp, n_experts)
    E, size = parts.shape
    h, d = W1.shape
    if router == "unit":
        r = UnitGateRouter(E)
        kk = E
    elif router == "topk":
        r = "topk"
        kk = E if k is None else k
    else:
        raise ValueError(f"router must be 'unit' or 'topk', got {router!r}")
    fk = {"device": W1.device, "dtype": W1.dtype}
    moe = MoELayer(
        d, size, E, kk, router=r, activation=name, dispatch=dispatch, bias=True, **fk
    )
    valid = parts >= 0
    idx = parts.clamp(min=0)
    mask = valid.to(W1.dtype)
    with torch.no_grad():
        moe.w1.copy_(W1[idx].transpose(1, 2) * mask[:, None, :])  # (E, d, size)
        moe.b1.copy_((b1[idx] if b1 is not None else W1.new_zeros(E, size)) * mask)
        moe.w2.copy_(W2.T[idx] * mask[:, :, None])  # (E, size, d)
        moe.b2.copy_((b2 if b2 is not None else W1.new_zeros(d)).expand(E, d) / E)
    moe.expert_neurons = parts
    moe.neuron_importance = imp
    return moe


def svd_knowledge_gathering(weights, rank=None):
    r"""OneS SVD knowledge gathering of a stack of expert matrices.

    .. math:: \hat W = \frac1E\sum_{e} [W^{(e)}]_r,\qquad
        [W]_r = \sum_{i\le r}\sigma_i u_i v_i^\top

    Parameters
    ----------
    weights : Tensor of shape (E, m, n)
    rank : int or None
        None keeps full rank (the plain average).

    Returns
    -------
    merged : Tensor of shape (m, n)
    tail : Tensor of shape (E,)
        :math:`\lVert W^{(e)} - [W^{(e)}]_r\rVert_F^2`, equal to the
        Eckart-Young tail :math:`\sum_{i>r}\sigma_i^{(e)2}`.
    """
    if not isinstance(weights, torch.Tensor) or weights.ndim != 3:
        raise ValueError(
            "weights must be a 3-D tensor (E, m, n), got "
            f"{getattr(weights, 'shape', type(weights))}"
        )
    if not bool(torch.isfinite(weights).all()):
        raise ValueError("weights contain NaN or inf")
    full = min(weights.shape[1], weights.shape[2])
    if rank is None:
        rank = full
    if isinstance(rank, bool) or int(rank) != rank or not 1 <= int(rank) <= full:
        raise ValueError(f"rank must be an integer in [1, {full}], got {rank!r}")
    r = int(rank)
    U, S, Vh = torch.linalg.svd(weights, full_matrices=False)
    low = (U[:, :, :r] * S[:, None, :r]) @ Vh[:, :r, :]
    return low.mean(0), (weights - low).pow(2).sum(dim=(1, 2))


def moe_to_dense(moe_layer, method="average", rank=None):
    r"""Merge the experts of an :class:`~mixstat.nn.MoELayer` into one dense FFN.

    ``'average'``: :math:`\bar W = \frac1E\sum_e W^{(e)}` for every weight and
    bias (OneS average knowledge gathering). ``'svd'``: each expert weight
    matrix is first truncated to rank ``rank``
    (:func:`svd_knowledge_gathering`); biases are averaged.

    Returns
    -------
    nn.Sequential(Linear(d, h), activation, Linear(h, d))
        With attribute ``merge_tail`` (dict ``'w1'``, ``'w2'`` -> Tensor (E,)
        of squared truncation errors) for ``'svd'``.
    """
    if not isinstance(moe_layer, MoELayer):
        raise ValueError(
            f"moe_layer must be a mixstat.nn.MoELayer, got {type(moe_layer).__name__}"
        )
    if method not in ("average", "svd"):
        raise ValueError(f"method must be 'average' or 'svd', got {method!r}")
    if method == "average" and rank is not None:
        raise ValueError("rank is only used with method='svd'")
    w1, w2 = moe_layer.w1.detach(), moe_layer.w2.detach()
    tails = {}
    if method == "average":
        W1, W2 = w1.mean(0), w2.mean(0)
    else:
        W1, tails["w1"] = svd_knowledge_gathering(w1, rank)
        W2, tails["w2"] = svd_knowledge_gathering(w2, rank)
    d, h = W1.shape
    bias = moe_layer.b1 is not None
    fk = {"device": W1.device, "dtype": W1.dtype}
    l1, l2 = nn.Linear(d, h, bias=bias, **fk), nn.Linear(h, d, bias=bias, **fk)
    act = {
        "gelu": nn.GELU(),
        "relu": nn.ReLU(),
        "silu": nn.SiLU(),
        "tanh": nn.Tanh(),
        "identity": nn.Identity(),
    }[moe_layer.activation]
    with torch.no_grad():
        l1.weight.copy_(W1.T)
        l2.weight.copy_(W2.T)
        if bias:
            l1.bias.copy_(moe_layer.b1.detach().mean(0))
            l2.bias.copy_(moe_layer.b2.detach().mean(0))
    dense = nn.Sequential(l1, act, l2)
    dense.merge_tail = tails
    return dense
