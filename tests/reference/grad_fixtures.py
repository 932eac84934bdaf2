"""What the op-fixture scripts (make_index_ops.py, make_model_ops.py) share: a cleared output
folder under tests/data/, a seeded torch, .npy writing, and the pool of upstream gradients the C++
tests rebuild g from (g = gpool[:numel].reshape(output shape))."""
import pathlib

import numpy as np
import torch


class GradFixtures:
    def __init__(self, area, seed, pool_size):
        self.out_dir = pathlib.Path(__file__).resolve().parents[1] / "data" / area
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for old in self.out_dir.glob("*.npy"):
            old.unlink()
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        self.gpool = torch.randn(pool_size, dtype=torch.float32)
        self.save("gpool", self.gpool)

    def save(self, name, t):
        np.save(self.out_dir / f"{name}.npy", t.detach().cpu().numpy())

    def upstream(self, y):
        return self.gpool[: y.numel()].reshape(y.shape).clone()
