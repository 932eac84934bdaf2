"""Times Pillow and torchvision on bench_image.cpp's cases and images; prints JSON for it.

    /root/.cache/fiber-ref-venv/bin/python bench/bench_image_pillow.py > pillow.json
    build/bench/bench_image pillow.json

The pipelines are the reference ones of tests/reference/make_images.py (imported from there),
on one thread: Pillow's resize is single-threaded and torch is pinned to one thread. Each case
also gives the CRC-32 of its output bytes, so bench_image can say whether fiber's are the same.
"""
import json
import pathlib
import statistics
import sys
import time
import zlib

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "reference"))
from make_images import coarse_pipeline, fine_pipeline  # noqa: E402


def source_image(width: int, height: int) -> np.ndarray:
    """Must match source_image() in bench_image.cpp."""
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    planes = [(3 * x + 5 * y + 85 * c + ((x * y) >> 5)) & 255 for c in range(3)]
    return np.stack(planes, axis=-1).astype(np.uint8)


def median_times(run, repeats: int = 7, warmup: int = 2) -> tuple[float, float]:
    """As median_times in bench_image.cpp: this thread's CPU time and wall time, in seconds."""
    for _ in range(warmup):
        run()
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.thread_time(), time.perf_counter()
        run()
        wall.append(time.perf_counter() - w)
        cpu.append(time.thread_time() - c)
    return statistics.median(cpu), statistics.median(wall)


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def image_bytes(im: Image.Image) -> bytes:
    return np.asarray(im).tobytes()  # [H, W, 3] uint8


def tensor_bytes(x: torch.Tensor) -> bytes:
    return x.contiguous().numpy().astype("<f4").tobytes()  # [C, H, W] float32


def main() -> None:
    torch.set_num_threads(1)
    hd_pixels, vga_pixels = source_image(1920, 1080), source_image(640, 480)
    hd, vga = Image.fromarray(hd_pixels, "RGB"), Image.fromarray(vga_pixels, "RGB")
    bicubic, bilinear = Image.Resampling.BICUBIC, Image.Resampling.BILINEAR
    cases = {
        "resize 1920x1080 -> 384x384 bicubic": (lambda: hd.resize((384, 384), bicubic), image_bytes),
        "resize 640x480 -> 1066x800 bilinear": (lambda: vga.resize((1066, 800), bilinear), image_bytes),
        "resize 1920x1080 -> 1422x800 bilinear": (lambda: hd.resize((1422, 800), bilinear), image_bytes),
        "coarse 1920x1080 -> [3, 384, 384]": (lambda: coarse_pipeline(hd, 384), tensor_bytes),
        "fine-grained 640x480 -> [3, 800, 1088]": (lambda: fine_pipeline(vga, 800, 1333)[0], tensor_bytes),
        "fine-grained 1920x1080 -> [3, 800, 1440]": (lambda: fine_pipeline(hd, 800, 1333)[0], tensor_bytes),
    }
    results = {}
    for name, (run, to_bytes) in cases.items():
        cpu, wall = median_times(run)
        results[name] = {"cpu_seconds": cpu, "wall_seconds": wall, "crc32": crc32(to_bytes(run()))}
        print(f"{name}: {cpu * 1e3:.2f} ms CPU, {wall * 1e3:.2f} ms wall", file=sys.stderr)
    json.dump({
        "versions": {"pillow": PIL.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__},
        "source_crc32": {"1920x1080": crc32(hd_pixels.tobytes()), "640x480": crc32(vga_pixels.tobytes())},
        "cases": results,
    }, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
