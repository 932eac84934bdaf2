"""The reference side of bench_ground: the OFFICIAL fine-grained FIBER-B (microsoft/FIBER modules
from the git mirror, built as tests/reference/check_full_size_fine.py builds them, the CUDA-only
deformable conv replaced by torchvision.ops.deform_conv2d with the kernel's reads) under PyTorch
eager on the CPU, float32, torch.inference_mode, the same threads, the same frames and prompt as
bench_ground: seconds per frame for the model (backbone with fusion, FPN, VLDyHead), on frames
already resized and padded (1088 x 800 and 1344 x 800); the official ATSSPostProcessor is timed
once apart (its NMS here is the CUDA kernel's rule restated in Python).

    /root/.cache/fiber-ref-venv/bin/python bench/bench_ground_torch.py --threads 2 --repeats 2
"""
import argparse
import pathlib
import statistics
import sys
import time
import types

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/reference"))
import check_full_size_fine as full  # noqa: E402
import fine_official  # noqa: E402
import make_fine_keys  # noqa: E402
from transformers import RobertaTokenizerFast  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    fusion, head = full.build("v2")
    tok = RobertaTokenizerFast(str(ROOT / "tests/data/text/vocab.json"), str(ROOT / "tests/data/text/merges.txt"))
    t = tok([full.TEXT], max_length=256, padding="max_length", truncation=True, return_tensors="pt")
    text = {"input_ids": t["input_ids"], "attention_mask": t["attention_mask"]}
    positive = {1: [2, 3, 4, 5, 6], 2: [10, 11, 12, 13, 14]}
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    for (w, h), (pw, ph) in [((1066, 800), (1088, 800)), ((1333, 800), (1344, 800))]:
        x = torch.randn(1, 3, ph, pw)

        def model():
            with torch.inference_mode():
                visual, lang, _ = fusion(text, types.SimpleNamespace(tensors=x))
                return head(list(visual), lang, lang["embedded"])

        outs = model()  # warm-up
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            outs = model()
            times.append(time.perf_counter() - t0)
        s = statistics.median(times)
        # The official post-processor once, apart: its NMS here is the CUDA kernel's rule restated in
        # Python (O(n^2) loops), far slower than the kernel, so it is not part of the frame time.
        t0 = time.perf_counter()
        det = fine_official.official_detections(make_fine_keys.official, outs, [(w, h)], positive, 100)
        post = time.perf_counter() - t0
        print(f"model input {pw}x{ph}: model {s:.3f} s/frame ({1 / s:.3f} frames/s); "
              f"post-processing (Python NMS) {post:.1f} s, {len(det[0])} detections")

if __name__ == "__main__":
    main()
