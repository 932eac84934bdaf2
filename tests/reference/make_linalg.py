"""Fixtures for matmul/linear/conv2d parity: PyTorch outputs and gradients in float32."""
import pathlib
import numpy as np
import torch
import torch.nn.functional as F

out = pathlib.Path(__file__).resolve().parents[1] / "data" / "linalg"
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)


def save(name, t):
    np.save(out / f"{name}.npy", t.detach().numpy().astype(np.float32))


# Broadcast batched matmul: [2, 1, 5, 7] x [3, 7, 4] -> [2, 3, 5, 4]
a = torch.randn(2, 1, 5, 7, requires_grad=True)
b = torch.randn(3, 7, 4, requires_grad=True)
y = torch.matmul(a, b)
w = torch.randn_like(y)
(y * w).sum().backward()
for n, t in dict(mm_a=a, mm_b=b, mm_y=y, mm_w=w, mm_ga=a.grad, mm_gb=b.grad).items():
    save(n, t)

# conv2d cases: (name, N, C, H, W, O, kh, kw, stride, padding, dilation, groups)
cases = [
    ("conv_basic", 2, 3, 9, 8, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    ("conv_strided", 1, 4, 11, 10, 6, 3, 2, (2, 3), (1, 0), (1, 1), 2),
    ("conv_dilated", 2, 2, 10, 9, 3, 3, 3, (1, 1), (2, 2), (2, 2), 1),
    ("conv_1x1", 2, 6, 5, 7, 4, 1, 1, (1, 1), (0, 0), (1, 1), 1),
    ("conv_depthwise", 1, 4, 7, 7, 8, 3, 3, (2, 2), (1, 1), (1, 1), 4),
]
for name, N, C, H, W, O, kh, kw, stride, padding, dilation, groups in cases:
    x = torch.randn(N, C, H, W, requires_grad=True)
    wt = torch.randn(O, C // groups, kh, kw, requires_grad=True)
    bias = torch.randn(O, requires_grad=True)
    y = F.conv2d(x, wt, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    for n, t in dict(x=x, w=wt, b=bias, y=y, g=g, gx=x.grad, gw=wt.grad, gb=bias.grad).items():
        save(f"{name}_{n}", t)
