"""Fixtures for tests/index_ops: F.interpolate, adaptive average pooling, index_select, gather,
embedding, one_hot and concat/stack/chunk in float32, forward and gradients, from PyTorch.

Every gradient is taken with the upstream gradient g = gpool[:numel].reshape(output shape), so the
C++ test can rebuild g from gpool.npy. The case lists here and in tests/index_ops/test_*_parity.cpp
must agree (the names are the file names).

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_index_ops.py
"""
import torch
import torch.nn.functional as F

from grad_fixtures import GradFixtures

fx = GradFixtures("index_ops", seed=20240611, pool_size=1024)
out_dir, save, upstream = fx.out_dir, fx.save, fx.upstream


def forward_backward(name, x, fn, grad=True):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    save(f"{name}_out", y)
    if grad:
        (gx,) = torch.autograd.grad(y, x, upstream(y))
        save(f"{name}_grad", gx)


# ---- interpolate -----------------------------------------------------------------------------
x4 = torch.randn(2, 2, 5, 7)
x3 = torch.randn(2, 2, 9)
save("x4", x4)
save("x3", x3)

interp_cases = [
    # name, input, kwargs
    ("nearest_up", x4, dict(size=(11, 13), mode="nearest")),
    ("nearest_down", x4, dict(size=(3, 4), mode="nearest")),
    ("nearest_scale", x4, dict(scale_factor=(1.7, 0.6), mode="nearest")),
    ("nearest_x2", x4, dict(scale_factor=2.0, mode="nearest")),
    ("nearest_same", x4, dict(scale_factor=1.1, mode="nearest")),
    ("nearest_exact_up", x4, dict(size=(11, 13), mode="nearest-exact")),
    ("nearest_exact_down", x4, dict(size=(3, 4), mode="nearest-exact")),
    ("bilinear_ac0_up", x4, dict(size=(11, 13), mode="bilinear", align_corners=False)),
    ("bilinear_ac0_down", x4, dict(size=(3, 4), mode="bilinear", align_corners=False)),
    ("bilinear_ac1_up", x4, dict(size=(11, 13), mode="bilinear", align_corners=True)),
    ("bilinear_ac1_down", x4, dict(size=(3, 4), mode="bilinear", align_corners=True)),
    ("bilinear_ac1_one", x4, dict(size=(1, 4), mode="bilinear", align_corners=True)),
    ("bilinear_ac0_scale", x4, dict(scale_factor=(1.5, 2.3), mode="bilinear", align_corners=False)),
    ("bilinear_ac0_recompute", x4,
     dict(scale_factor=(1.5, 2.3), mode="bilinear", align_corners=False, recompute_scale_factor=True)),
    ("bilinear_ac0_same", x4, dict(scale_factor=1.1, mode="bilinear", align_corners=False)),
    ("bicubic_ac0_up", x4, dict(size=(11, 13), mode="bicubic", align_corners=False)),
    ("bicubic_ac0_down", x4, dict(size=(3, 4), mode="bicubic", align_corners=False)),
    ("bicubic_ac1_up", x4, dict(size=(11, 13), mode="bicubic", align_corners=True)),
    ("bicubic_ac1_down", x4, dict(size=(3, 4), mode="bicubic", align_corners=True)),
    ("bicubic_ac0_scale", x4, dict(scale_factor=(1.5, 0.7), mode="bicubic", align_corners=False)),
    ("linear_ac0_up", x3, dict(size=14, mode="linear", align_corners=False)),
    ("linear_ac1_down", x3, dict(size=5, mode="linear", align_corners=True)),
    ("linear_ac0_scale", x3, dict(scale_factor=1.6, mode="linear", align_corners=False)),
    ("nearest1d_down", x3, dict(size=4, mode="nearest")),
    ("area_2d", x4, dict(size=(3, 4), mode="area")),
    ("area_1d", x3, dict(size=4, mode="area")),
]
for name, x, kw in interp_cases:
    forward_backward(f"interp_{name}", x, lambda t, kw=kw: F.interpolate(t, **kw))

# F.upsample_bilinear (align_corners=True) on a non-contiguous view.
forward_backward("interp_upsample_bilinear_t", x4,
                 lambda t: F.upsample_bilinear(t.transpose(2, 3), size=(8, 6)))
# PyTorch's bicubic backward copies when the output size equals the input size even if the
# scale factor is not 1, which is not the adjoint of its forward: forward only.
forward_backward("interp_bicubic_ac0_same", x4,
                 lambda t: F.interpolate(t, scale_factor=1.1, mode="bicubic", align_corners=False), grad=False)

# ---- adaptive average pooling ----------------------------------------------------------------
for oh, ow in [(3, 4), (5, 7), (2, 3), (7, 9), (1, 1)]:
    forward_backward(f"aap2d_{oh}x{ow}", x4, lambda t, s=(oh, ow): F.adaptive_avg_pool2d(t, s))
for ol in [4, 13]:
    forward_backward(f"aap1d_{ol}", x3, lambda t, s=ol: F.adaptive_avg_pool1d(t, s))

# ---- index ops -------------------------------------------------------------------------------
xi = torch.randn(4, 6, 5)
save("xi", xi)
sel = torch.tensor([3, 0, 3, 1, 3, 2, 0], dtype=torch.int64)  # repeats: gradients accumulate
save("sel", sel)
for axis in [0, 1, 2]:
    forward_backward(f"index_select_{axis}", xi, lambda t, a=axis: torch.index_select(t, a, sel))

gather_index = {
    0: torch.randint(0, 4, (7, 3, 5)),
    1: torch.randint(0, 6, (3, 8, 4)),
    2: torch.randint(0, 5, (4, 6, 9)),
}
for axis, idx in gather_index.items():
    save(f"gather_{axis}_index", idx)
    forward_backward(f"gather_{axis}", xi, lambda t, a=axis, i=idx: torch.gather(t, a, i))

emb_w = torch.randn(10, 6)
emb_ids = torch.tensor([[0, 3, 3, 9], [1, 0, 7, 3], [9, 9, 2, 0]], dtype=torch.int64)
save("emb_w", emb_w)
save("emb_ids", emb_ids)
for tag, pad in [("nopad", None), ("pad0", 0), ("padm1", -1)]:
    forward_backward(f"embedding_{tag}", emb_w, lambda w, p=pad: F.embedding(emb_ids, w, padding_idx=p))

save("one_hot_10", F.one_hot(emb_ids, 10))
save("one_hot_infer", F.one_hot(emb_ids))

# ---- join / split ----------------------------------------------------------------------------
ja = torch.randn(2, 3, 4)
jb = torch.randn(2, 5, 4)
save("ja", ja)
save("jb", jb)
save("concat_1", torch.cat([ja, jb], 1))
save("stack_2", torch.stack([ja, ja * 2], 2))
# chunk(x, 3, axis=1) of xi, pieces 0 and 2 used: the gradient of piece 1 is zero.
xc = xi.clone().requires_grad_(True)
p0, p1, p2 = torch.chunk(xc, 3, 1)
loss = (p0 * upstream(p0)).sum() + (p2 * upstream(p2)).sum()
loss.backward()
save("chunk_grad", xc.grad)
