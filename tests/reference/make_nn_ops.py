"""Fixtures for tests/nn_ops: softmax, log_softmax, logsumexp, layer_norm, cross_entropy and
binary_cross_entropy_with_logits computed by PyTorch in float32 (forward values and gradients),
from fixed seeds. Gradients are those of sum(out * g) for the stored upstream gradient g (for
reductions to a scalar, g = 1). Run with the pinned interpreter; writes tests/data/nn_ops/*.npy.
"""
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

out = pathlib.Path(__file__).resolve().parents[1] / "data" / "nn_ops"
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(20261123)
torch.set_num_threads(1)


def save(name, t):
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    np.save(out / f"{name}.npy", np.array(a, order="C"))  # keeps 0-d arrays 0-d


def grads(fn, inputs, upstream):
    """fn(*inputs) and the gradients of sum(fn * upstream) for each input (None if unused)."""
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    y = fn(*leaves)
    (y * upstream).sum().backward()
    return y, [x.grad for x in leaves]


# ---- softmax, log_softmax, logsumexp -------------------------------------------------------
x = torch.randn(6, 37) * 3
x[1] = torch.empty(37).uniform_(-80, 80)  # large magnitudes: stability
x[4, :5] = torch.tensor([80.0, -80.0, 79.5, 0.0, -79.0])
save("softmax_x", x)
g = torch.randn(6, 37)
save("softmax_g", g)
y, (gx,) = grads(lambda t: F.softmax(t, -1), [x], g)
save("softmax_y", y); save("softmax_gx", gx)
y, (gx,) = grads(lambda t: F.log_softmax(t, -1), [x], g)
save("log_softmax_y", y); save("log_softmax_gx", gx)
g_row = torch.randn(6)
save("logsumexp_g", g_row)
y, (gx,) = grads(lambda t: torch.logsumexp(t, -1), [x], g_row)
save("logsumexp_y", y); save("logsumexp_gx", gx)

# Along a middle axis: [3, 17, 5] over axis 1 (lines 5 apart).
x3 = torch.randn(3, 17, 5) * 4
x3[1, :, 2] = torch.empty(17).uniform_(-80, 80)
save("softmax3_x", x3)
g3 = torch.randn(3, 17, 5)
save("softmax3_g", g3)
y, (gx,) = grads(lambda t: F.softmax(t, 1), [x3], g3)
save("softmax3_y", y); save("softmax3_gx", gx)
y, (gx,) = grads(lambda t: F.log_softmax(t, 1), [x3], g3)
save("log_softmax3_y", y); save("log_softmax3_gx", gx)
g3k = torch.randn(1, 17, 1)
save("logsumexp3_g", g3k)
y, (gx,) = grads(lambda t: torch.logsumexp(t, (0, 2), keepdim=True), [x3], g3k)
save("logsumexp3_y", y); save("logsumexp3_gx", gx)

# Special lines (forward only): all -inf, some -inf, +inf, NaN, ordinary.
inf, nan = float("inf"), float("nan")
special = torch.tensor([
    [-inf, -inf, -inf, -inf, -inf],
    [-inf, 1.0, -inf, 2.0, 0.5],
    [inf, 1.0, 2.0, 3.0, 4.0],
    [nan, 1.0, 2.0, 3.0, 4.0],
    [1.0, 2.0, 3.0, 4.0, 5.0],
])
save("special_x", special)
save("special_softmax", F.softmax(special, -1))
save("special_log_softmax", F.log_softmax(special, -1))
save("special_logsumexp", torch.logsumexp(special, -1))

# ---- layer_norm -----------------------------------------------------------------------------
xl = torch.randn(5, 7, 40) * 2 + 0.5
save("ln_x", xl)
gl = torch.randn(5, 7, 40)
save("ln_g", gl)
w = torch.randn(40) * 0.5 + 1
b = torch.randn(40) * 0.1
save("ln_w", w); save("ln_b", b)
y, (gx, gw, gb) = grads(lambda t, w_, b_: F.layer_norm(t, (40,), w_, b_, 1e-5), [xl, w, b], gl)
save("ln_y", y); save("ln_gx", gx); save("ln_gw", gw); save("ln_gb", gb)
# Over the last two dims, weight only, eps 1e-3.
w2 = torch.randn(7, 40) * 0.5 + 1
save("ln2_w", w2)
y, (gx, gw) = grads(lambda t, w_: F.layer_norm(t, (7, 40), w_, None, 1e-3), [xl, w2], gl)
save("ln2_y", y); save("ln2_gx", gx); save("ln2_gw", gw)
# Large mean, small spread: the float32 input, the expected values from float64.
xo = (1000 + torch.randn(4, 24) * 0.01).float()
save("ln_offset_x", xo)
save("ln_offset_y64", F.layer_norm(xo.double(), (24,), None, None, 1e-5))

# ---- cross_entropy (class indices) ----------------------------------------------------------
logits = torch.randn(10, 7) * 2
logits[0] = torch.tensor([80.0, -80.0, 40.0, 79.0, -30.0, 0.0, 80.0])
logits[3] = torch.tensor([-80.0, -79.0, -80.0, -78.0, -80.0, -80.0, -80.0])
target = torch.randint(0, 7, (10,))
target[2] = -100
target[7] = -100
target[0] = 1  # the -80 logit: a large loss
cw = torch.empty(7).uniform_(0.5, 2.0)
save("ce_logits", logits); save("ce_target", target); save("ce_weight", cw)
g_none = torch.randn(10)
save("ce_g_none", g_none)
# Combos k = 2 * has_weight + (label_smoothing == 0.1): (none, 0), (none, 0.1), (w, 0), (w, 0.1).
for reduction in ("none", "mean", "sum"):
    losses, gradients = [], []
    for has_w in (False, True):
        for ls in (0.0, 0.1):
            up = g_none if reduction == "none" else torch.tensor(1.0)
            y, (gx,) = grads(lambda t: F.cross_entropy(t, target, weight=cw if has_w else None,
                                                       label_smoothing=ls, reduction=reduction), [logits], up)
            losses.append(y); gradients.append(gx)
    save(f"ce_loss_{reduction}", torch.stack(losses)); save(f"ce_grad_{reduction}", torch.stack(gradients))
# ignore_index a valid class (3), weight, smoothing 0.3, mean.
y, (gx,) = grads(lambda t: F.cross_entropy(t, target.clamp(min=0), weight=cw, ignore_index=3,
                                           label_smoothing=0.3), [logits], torch.tensor(1.0))
save("ce_ignore3_loss", y); save("ce_ignore3_grad", gx)
# [N, C, d1, d2] logits, [N, d1, d2] targets, weight, smoothing 0.2.
logits4 = torch.randn(3, 5, 2, 4) * 3
logits4[1, :, 0, 1] = torch.tensor([80.0, -80.0, 0.0, 80.0, -80.0])
target4 = torch.randint(0, 5, (3, 2, 4))
target4[0, 1, 2] = -100
target4[2, 0, 0] = -100
cw5 = torch.empty(5).uniform_(0.5, 2.0)
save("ce4_logits", logits4); save("ce4_target", target4); save("ce4_weight", cw5)
g4 = torch.randn(3, 2, 4)
save("ce4_g_none", g4)
for reduction in ("none", "mean"):
    up = g4 if reduction == "none" else torch.tensor(1.0)
    y, (gx,) = grads(lambda t: F.cross_entropy(t, target4, weight=cw5, label_smoothing=0.2, reduction=reduction),
                     [logits4], up)
    save(f"ce4_loss_{reduction}", y); save(f"ce4_grad_{reduction}", gx)

# ---- cross_entropy (probabilities) ----------------------------------------------------------
probs = F.softmax(torch.randn(10, 7) * 2, -1)
save("cep_target", probs)
for reduction in ("none", "mean", "sum"):
    up = g_none if reduction == "none" else torch.tensor(1.0)
    y, (gx, gt) = grads(lambda t, p: F.cross_entropy(t, p, weight=cw, label_smoothing=0.1, reduction=reduction),
                        [logits, probs], up)
    save(f"cep_loss_{reduction}", y); save(f"cep_grad_logits_{reduction}", gx); save(f"cep_grad_target_{reduction}", gt)

# ---- binary_cross_entropy_with_logits -------------------------------------------------------
bl = torch.randn(6, 9) * 3
bl[0] = torch.tensor([80.0, -80.0, 60.0, -60.0, 0.0, 30.0, -30.0, 80.0, -80.0])
bt = torch.rand(6, 9)
bt[0] = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5, 1.0, 0.0, 1.0, 0.0])
bw = torch.empty(6, 1).uniform_(0.5, 2.0)   # broadcast over columns
bpw = torch.empty(9).uniform_(0.5, 3.0)     # per class
save("bce_logits", bl); save("bce_target", bt); save("bce_weight", bw); save("bce_pos_weight", bpw)
bg = torch.randn(6, 9)
save("bce_g_none", bg)
# Combos k = 2 * has_weight + has_pos_weight.
for reduction in ("none", "mean", "sum"):
    losses, gls, gts = [], [], []
    for has_w in (False, True):
        for has_pw in (False, True):
            up = bg if reduction == "none" else torch.tensor(1.0)
            y, (gx, gt) = grads(lambda t, s: F.binary_cross_entropy_with_logits(
                t, s, weight=bw if has_w else None, pos_weight=bpw if has_pw else None, reduction=reduction),
                [bl, bt], up)
            losses.append(y); gls.append(gx); gts.append(gt)
    save(f"bce_loss_{reduction}", torch.stack(losses))
    save(f"bce_grad_logits_{reduction}", torch.stack(gls)); save(f"bce_grad_target_{reduction}", torch.stack(gts))

# ---- layer_norm backward on the large-mean rows, float64 reference ----------------------------
gen = torch.Generator().manual_seed(7)
go = torch.randn(4, 24, generator=gen)
save("ln_offset_g", go)
_, (gxo,) = grads(lambda t: F.layer_norm(t, (24,), None, None, 1e-5), [xo.double()], go.double())
save("ln_offset_gx64", gxo)

total = sum(p.stat().st_size for p in out.glob("*.npy"))
print(f"wrote {len(list(out.glob('*.npy')))} files, {total / 1024:.1f} KiB to {out}")
