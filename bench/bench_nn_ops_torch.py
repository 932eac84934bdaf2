"""PyTorch side of bench_nn_ops: PyTorch (CPU, eager) on the same shapes, printed as
'<row name>\t<median seconds>\t<best seconds>' lines that bench_nn_ops puts beside its own rows
(matched by name). Run by `bench_nn_ops --torch PYTHON` with the pinned interpreter
/root/.cache/fiber-ref-venv/bin/python; the argument is the thread count.

Backward rows call torch's backward kernels directly (_softmax_backward_data,
native_layer_norm_backward), without autograd, like the C++ kernel rows; they allocate their
outputs, which ours do not. The 'autograd' rows go through autograd on both sides.
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
torch.manual_seed(1)


def timings(fn, repeats=25, warmup=3):
    """Wall seconds per call: median and minimum."""
    for _ in range(warmup):
        fn()
    wall = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
    return statistics.median(wall), min(wall)


def name(s):
    return "[" + ", ".join(str(d) for d in s) + "]"


rows = []
for s in [(256, 144, 144), (64, 144, 144), (32, 144, 144), (12, 40, 40)]:
    x, g = torch.randn(s) * 3, torch.randn(s)
    y = F.softmax(x, -1)
    out = torch.empty(s)
    rows.append((f"softmax fwd {name(s)}", lambda x=x, out=out: torch.softmax(x, -1, out=out)))
    rows.append((f"softmax fwd, allocating {name(s)}", lambda x=x: F.softmax(x, -1)))
    rows.append((f"softmax bwd {name(s)}", lambda y=y, g=g: torch.ops.aten._softmax_backward_data(g, y, -1, torch.float32)))

x = torch.randn(40, 50265) * 3
out = torch.empty_like(x)
target = torch.randint(0, 50265, (40,))
rows.append(("log_softmax fwd [40, 50265]", lambda: torch.log_softmax(x, -1, out=out)))


def ce_fwd_bwd():
    xv = x.detach().requires_grad_(True)
    F.cross_entropy(xv, target).backward()


rows.append(("cross_entropy fwd+bwd, autograd [40, 50265]", ce_fwd_bwd))
for s in [(576, 512), (40, 768), (9216, 128)]:
    x2, g2 = torch.randn(s) * 2 + 0.5, torch.randn(s)
    w, b = torch.randn(s[1]) * 0.1 + 1, torch.randn(s[1]) * 0.1
    _, mean, rstd = torch.native_layer_norm(x2, [s[1]], w, b, 1e-5)
    rows.append((f"layer_norm fwd, allocating {name(s)}", lambda x2=x2, w=w, b=b, s=s: F.layer_norm(x2, (s[1],), w, b)))
    rows.append((f"layer_norm bwd dx {name(s)}", lambda x2=x2, g2=g2, w=w, b=b, mean=mean, rstd=rstd, s=s:
                 torch.ops.aten.native_layer_norm_backward(g2, x2, [s[1]], mean, rstd, w, b, [True, False, False])))
    rows.append((f"layer_norm bwd dx, dw, db {name(s)}", lambda x2=x2, g2=g2, w=w, b=b, mean=mean, rstd=rstd, s=s:
                 torch.ops.aten.native_layer_norm_backward(g2, x2, [s[1]], mean, rstd, w, b, [True, True, True])))

    def ln_fwd_bwd(x2=x2, w=w, b=b, g2=g2, s=s):
        leaves = [t.detach().requires_grad_(True) for t in (x2, w, b)]
        F.layer_norm(leaves[0], (s[1],), leaves[1], leaves[2]).backward(g2)

    rows.append((f"layer_norm fwd+bwd, autograd (dx, dw, db) {name(s)}", ln_fwd_bwd))

print(f"PyTorch {torch.__version__}, threads: {torch.get_num_threads()}", flush=True)
for row, fn in rows:
    median, best = timings(fn)
    print(f"{row}\t{median!r}\t{best!r}", flush=True)
