"""PyTorch side of bench_elementwise: the same expressions on the same shapes, printed as
'<case index> <median seconds>' lines for the C++ benchmark to put beside its own figures.
Run by bench_elementwise --torch PYTHON (the pinned interpreter of ../shared/tools/reference-env)."""
import sys
import time
import torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
n = 1 << 24
g = torch.Generator().manual_seed(1)
x = torch.randn(n // 1024, 1024, generator=g)
y = torch.randn(n // 1024, 1024, generator=g)
bias = torch.randn(1024, generator=g)
out = torch.empty_like(x)
F = torch.nn.functional
cases = [
    lambda: torch.add(torch.mul(x, 2.0), 1.0, out=out),
    lambda: torch.add(x, y, out=out),
    lambda: out.copy_(F.gelu(x + bias)),
    lambda: out.copy_(torch.exp(F.gelu(x * y + bias) * 0.5 - torch.tanh(x))),
    lambda: out.copy_(torch.where(x > 0, x, 0.01 * x)),
    lambda: out[:1024].copy_(x[:1024].t() + 1.0),
]
for i, f in enumerate(cases):
    for _ in range(2):
        f()
    times = []
    for _ in range(7):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    print(i, times[len(times) // 2], flush=True)
