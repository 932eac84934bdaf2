"""Fixtures for tests/detection_ops: the modulated deformable convolution against
torchvision.ops.deform_conv2d (with and without a mask), forward and the gradients of input,
offset, mask, weight and bias, computed in float64 from float32-representable inputs.

Every gradient is taken with the upstream gradient g = gpool[:numel].reshape(output shape), so the
C++ test can rebuild g from gpool.npy. The case names here and in
tests/detection_ops/test_deform_conv_parity.cpp must agree. Inputs are saved as float32 (exactly
the values used), results as float64.

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_detection_ops.py
"""
import torch
from torchvision.ops import deform_conv2d

from grad_fixtures import GradFixtures

fx = GradFixtures("detection_ops", seed=20261205, pool_size=8192)
save = fx.save


def case(name, N, C, H, W, O, kh, kw, *, stride=1, padding=1, dilation=1, groups=1, offset_groups=1,
         offset_scale=1.5, with_mask=True, with_bias=True):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    K = kh * kw
    x = torch.randn(N, C, H, W)
    # Continuous offsets: no sampling point falls on an integer, where the coordinate gradient is
    # one-sided; a scale of a few pixels puts some points outside the image.
    offset = torch.randn(N, 2 * offset_groups * K, Ho, Wo) * offset_scale
    mask = torch.rand(N, offset_groups * K, Ho, Wo) if with_mask else None
    weight = torch.randn(O, C // groups, kh, kw) * 0.3
    bias = torch.randn(O) if with_bias else None
    inputs = {"x": x, "offset": offset, "mask": mask, "weight": weight, "bias": bias}
    leaves = {}
    for key, t in inputs.items():
        if t is None:
            continue
        save(f"{name}_{key}", t)
        leaves[key] = t.double().requires_grad_(True)
    y = deform_conv2d(leaves["x"], leaves["offset"], leaves["weight"], leaves.get("bias"),
                      stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), mask=leaves.get("mask"))
    save(f"{name}_out", y)
    g = fx.gpool[: y.numel()].reshape(y.shape).double()
    grads = torch.autograd.grad(y, list(leaves.values()), g)
    for key, gr in zip(leaves.keys(), grads):
        save(f"{name}_grad_{key}", gr)


# DyConv[1]: 3x3, stride 1, padding 1, one offset group, mask and bias.
case("dyhead", 2, 8, 7, 9, 6, 3, 3)
# DyConv[2]: stride 2 from the finer level.
case("stride2", 1, 6, 8, 10, 5, 3, 3, stride=2)
# Conv and offset groups, dilation 2, no bias.
case("groups", 1, 8, 6, 7, 4, 3, 3, padding=2, dilation=2, groups=2, offset_groups=2, with_bias=False)
# DCNv1 (no mask), a 3x2 kernel, stride (1, 2), padding (0, 1).
case("nomask", 2, 4, 5, 8, 3, 3, 2, stride=(1, 2), padding=(0, 1), with_mask=False)
# Offsets of up to ~10 pixels: many points wholly or partly outside the image.
case("far", 1, 3, 6, 6, 4, 3, 3, offset_scale=5.0)
print("wrote", fx.out_dir)
