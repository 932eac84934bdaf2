"""Fixtures for tests/nn_ops/test_layer_norm_rows.cpp: layer_norm's gradients over many rows at
Swin shapes, where the C++ backward sums dweight and dbias over chunks of rows (a dropped or
doubled chunk must show). The inputs are a formula of the indices whose values are exact in
float32, computed identically by the C++ test, so only the outputs are stored:

  x[r, j] = ((37 r + 101 j + (r j mod 13)) mod 211 - 105) / 32 + (r mod 7) / 4
  g[r, j] = ((53 r + 29 j + ((r + j) mod 11)) mod 97 - 48) / 64
  w[j]    = 1 + ((7 j mod 17) - 8) / 16
  b[j]    = ((3 j mod 11) - 5) / 8

PyTorch computes y = layer_norm(x, [n], w, b, 1e-5) and the gradients of sum(y * g) in float64.
Stored per shape [rows, n]: dweight [n], dbias [n], and dx at the rows r with r mod 37 == 0 and
the last row ([k, n]; the backward of x has no cross-row sums, so a sample of rows checks it).
Run with the pinned interpreter; writes tests/data/nn_ops/ln_rows_<rows>x<n>_*.npy.
"""
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

out = pathlib.Path(__file__).resolve().parents[1] / "data" / "nn_ops"
out.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)

SHAPES = [(576, 512), (4608, 128), (1000, 128)]  # Swin stage-3 and stage-1 rows; 1000 % 128 != 0


def inputs(rows, n):
    r = np.arange(rows, dtype=np.int64)[:, None]
    j = np.arange(n, dtype=np.int64)[None, :]
    x = ((37 * r + 101 * j + (r * j) % 13) % 211 - 105) / 32.0 + (r % 7) / 4.0
    g = ((53 * r + 29 * j + (r + j) % 11) % 97 - 48) / 64.0
    jj = np.arange(n, dtype=np.int64)
    w = 1 + ((7 * jj) % 17 - 8) / 16.0
    b = ((3 * jj) % 11 - 5) / 8.0
    return [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)) for a in (x, g, w, b)]


def sample_rows(rows):
    return [r for r in range(rows) if r % 37 == 0 or r == rows - 1]


for rows, n in SHAPES:
    x, g, w, b = inputs(rows, n)
    x.requires_grad_(True); w.requires_grad_(True); b.requires_grad_(True)
    y = F.layer_norm(x, (n,), w, b, 1e-5)
    (y * g).sum().backward()
    tag = f"ln_rows_{rows}x{n}"
    np.save(out / f"{tag}_gw.npy", w.grad.numpy())
    np.save(out / f"{tag}_gb.npy", b.grad.numpy())
    np.save(out / f"{tag}_gx.npy", np.ascontiguousarray(x.grad[sample_rows(rows)].numpy()))
    print(tag, "dx rows", len(sample_rows(rows)))
