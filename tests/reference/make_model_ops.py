"""Fixtures for tests/model_ops: roll, pad, the attention softmax (scale + bias + mask), linear +
GELU, sort and topk in float32, forward and gradients, from PyTorch.

Every gradient is taken with the upstream gradient g = gpool[:numel].reshape(output shape), so the
C++ test can rebuild g from gpool.npy. The case lists here and in tests/model_ops/test_parity.cpp
must agree (the names are the file names). dropout and drop_path have no fixture: PyTorch's random
streams are not ours (their tests check rates, determinism and gradients).

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_model_ops.py
"""
import torch
import torch.nn.functional as F

from grad_fixtures import GradFixtures

fx = GradFixtures("model_ops", seed=20261204, pool_size=2048)
out_dir, save, upstream = fx.out_dir, fx.save, fx.upstream


def forward_backward(name, inputs, fn):
    """Saves fn(*inputs) as <name>_out and d out / d inputs[i] as <name>_grad<i>."""
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    y = fn(*leaves)
    save(f"{name}_out", y)
    grads = torch.autograd.grad(y, leaves, upstream(y))
    for i, g in enumerate(grads):
        save(f"{name}_grad{i}", g)


# ---- roll -------------------------------------------------------------------------------------
xr = torch.randn(2, 5, 6, 3)
save("xr", xr)
roll_cases = {
    "swin": ((-2, -2), (1, 2)),
    "swin_back": ((2, 2), (1, 2)),
    "big": ((7, -4), (1, 3)),
    "outer": ((1,), (0,)),
    "repeat": ((1, 2), (1, 1)),
    "flat": (5, None),
}
for name, (shifts, dims) in roll_cases.items():
    forward_backward(f"roll_{name}", [xr], lambda t, s=shifts, d=dims: torch.roll(t, s, d))

# ---- pad --------------------------------------------------------------------------------------
xp = torch.randn(2, 3, 4, 5)
save("xp", xp)
pad_cases = {
    "swin": ((0, 0, 0, 1, 0, 2), 0.0),
    "last": ((1, 2), 1.5),
    "crop": ((2, -1, -1, 3), -0.5),
    "three": ((1, 1, 2, 0, 0, 1), 0.0),
}
for name, (pads, value) in pad_cases.items():
    forward_backward(f"pad_{name}", [xp], lambda t, p=pads, v=value: F.pad(t, p, mode="constant", value=v))

# ---- attention softmax ------------------------------------------------------------------------
# Swin: scores [B*nW, h, N, N], relative position bias [h, N, N], shift mask [nW, N, N] of 0/-100.
B, nW, h, N = 2, 4, 3, 5
swin_scores = torch.randn(B * nW, h, N, N) * 2
swin_bias = torch.randn(h, N, N)
swin_mask = torch.where(torch.rand(nW, N, N) < 0.3, -100.0, 0.0)
swin_mask[0] = 0.0
save("att_swin_scores", swin_scores)
save("att_swin_bias", swin_bias)
save("att_swin_mask", swin_mask)


def swin_attention(s, b, scale=0.3):
    a = s * scale + b.unsqueeze(0)
    a = a.view(B, nW, h, N, N) + swin_mask.unsqueeze(1).unsqueeze(0)
    return a.view(B * nW, h, N, N).softmax(-1)


forward_backward("att_swin", [swin_scores, swin_bias], swin_attention)
# Text: scores [B, h, L, L], additive mask [B, 1, 1, L] (0 kept, -10000 padding), no bias.
L = 6
text_scores = torch.randn(2, 3, L, L)
text_mask = torch.zeros(2, 1, 1, L)
text_mask[0, ..., 4:] = -10000.0
text_mask[1, ..., 5:] = float("-inf")
save("att_text_scores", text_scores)
save("att_text_mask", text_mask)
forward_backward("att_text", [text_scores], lambda s: (s * 0.125 + text_mask).softmax(-1))

# ---- linear + GELU ----------------------------------------------------------------------------
lx = torch.randn(2, 3, 6)
lw = torch.randn(5, 6) * 0.5
lb = torch.randn(5)
save("lg_x", lx)
save("lg_w", lw)
save("lg_b", lb)
forward_backward("lg_bias", [lx, lw, lb], lambda x, w, b: F.gelu(F.linear(x, w, b)))
forward_backward("lg_nobias", [lx, lw], lambda x, w: F.gelu(F.linear(x, w)))

# ---- sort and topk ----------------------------------------------------------------------------
xs = torch.randint(-3, 4, (4, 9)).float()  # many ties: the stable order matters
save("xs", xs)
for axis in (0, 1):
    for desc in (False, True):
        name = f"sort_{axis}_{'desc' if desc else 'asc'}"
        v, i = torch.sort(xs, dim=axis, descending=desc, stable=True)
        save(f"{name}_indices", i)
        forward_backward(name, [xs], lambda t, a=axis, d=desc: torch.sort(t, dim=a, descending=d, stable=True)[0])
xt = torch.randn(5, 8)  # distinct values: PyTorch's topk order among ties is unspecified
save("xt", xt)
for k, axis, largest in ((3, 1, True), (3, 1, False), (2, 0, True), (8, 1, True)):
    name = f"topk_{k}_{axis}_{'max' if largest else 'min'}"
    v, i = torch.topk(xt, k, dim=axis, largest=largest, sorted=True)
    save(f"{name}_indices", i)
    forward_backward(name, [xt], lambda t, k=k, a=axis, l=largest: torch.topk(t, k, dim=a, largest=l, sorted=True)[0])

print("wrote", len(list(out_dir.glob("*.npy"))), "files to", out_dir)
