"""Reference side of bench_coarse: the OFFICIAL coarse FIBER-B model (microsoft/FIBER modules,
built by tests/reference/coarse_official.py from the git mirror with its stand-ins, at the
full-size configuration of tests/reference/make_coarse_full.py), random weights, timed on the
same cells as bench_coarse:
  image  infer(image_only=True) -> cls_feats (Swin-B + ITC head)
  text   infer(text_only=True)  -> cls_feats (RoBERTa + ITC head)
  fused  infer(batch), then itm_score(cls_feats) and mlm_score(text_feats)
under PyTorch eager (torch.inference_mode) and under ONNX Runtime (each cell and batch exported
with torch.onnx.export, the TorchScript exporter, static shapes, to a temporary directory; an
InferenceSession with intra_op_num_threads = the same thread count, inter_op 1, sequential
execution, all graph optimisations).

Run by `bench_coarse --torch PYTHON`; alone:
    PY=$(cat /tmp/refenv.path); $PY bench/bench_coarse_torch.py --threads 2 --cells image --batches 1
Prints 'time<TAB>cell<TAB>batch<TAB>engine<TAB>median<TAB>best' (seconds) and
'flops<TAB>cell<TAB>batch<TAB>flops' (torch.utils.flop_counter over the first eager call) lines;
other lines are for people.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import coarse_official as co  # noqa: E402
import make_coarse_full  # noqa: E402

TEXT_LEN = 40


class ImageCell(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):  # [B, 3, 384, 384] -> [B, 768]
        return self.model.infer({"image": [image]}, image_only=True)["cls_feats"]


class TextCell(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, masks):  # [B, 40] x 2 -> [B, 768]
        batch = {"text_ids": ids, "text_labels": ids, "text_masks": masks}
        return self.model.infer(batch, text_only=True)["cls_feats"]


class FusedCell(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image, ids, masks):  # -> ITM logits [B, 2], MLM logits [B, 40, V]
        batch = {"image": [image], "text_ids": ids, "text_labels": ids, "text_masks": masks}
        r = self.model.infer(batch)
        return self.model.itm_score(r["cls_feats"]), self.model.mlm_score(r["text_feats"])


def inputs(cell, batch, n, g):
    image = torch.randn(batch, 3, n, n, generator=g)
    ids = torch.randint(3, 50000, (batch, TEXT_LEN), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2  # <s> ... </s>, no padding (as bench_coarse)
    masks = torch.ones(batch, TEXT_LEN, dtype=torch.long)
    return {"image": (image,), "text": (ids, masks), "fused": (image, ids, masks)}[cell]


def timings(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    wall = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
    return statistics.median(wall), min(wall)


def export(module, args, path):
    names = {1: ["image"], 2: ["ids", "masks"], 3: ["image", "ids", "masks"]}[len(args)]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, path, input_names=names, opset_version=17, dynamo=False,
                          do_constant_folding=True)
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cells", default="image,text,fused")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--mirror", default=co.DEFAULT_MIRROR)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="torch.meshgrid")  # inside the official Swin code
    torch.set_num_threads(args.threads)
    cells = args.cells.split(",")
    batches = [int(b) for b in args.batches.split(",")]

    t0 = time.perf_counter()
    cfg = make_coarse_full.config(reduced=False)
    ns = co.load_official(args.mirror)
    model = co.build_model(ns, cfg)
    co.randomize(model, seed=1, bf16_exact=False)
    model.eval()
    n = cfg["fiber"]["image_size"]
    ort = None
    if not args.no_ort:
        import onnxruntime as ort
    print(f"official FIBER {ns.commit[:12]}, PyTorch {torch.__version__}, threads {torch.get_num_threads()}"
          + (f", ONNX Runtime {ort.__version__}" if ort else "") + f"; model built in {time.perf_counter() - t0:.0f} s",
          flush=True)
    wrap = {"image": ImageCell, "text": TextCell, "fused": FusedCell}
    tmp = tempfile.mkdtemp(prefix="bench_coarse_onnx_")
    g = torch.Generator().manual_seed(3)
    try:
        for batch in batches:
            for cell in cells:
                module = wrap[cell](model).eval()
                x = inputs(cell, batch, n, g)
                # The first call counts the FLOPs (and is a warm-up).
                from torch.utils.flop_counter import FlopCounterMode
                with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                    module(*x)
                print(f"flops\t{cell}\t{batch}\t{counter.get_total_flops()}", flush=True)
                with torch.inference_mode():
                    med, best = timings(lambda: module(*x), args.repeats, args.warmup)
                print(f"time\t{cell}\t{batch}\ttorch\t{med!r}\t{best!r}", flush=True)
                if ort is None:
                    continue
                path = os.path.join(tmp, f"{cell}_{batch}.onnx")
                t = time.perf_counter()
                names = export(module, x, path)
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = args.threads
                opts.inter_op_num_threads = 1
                opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                feed = {k: v.numpy() for k, v in zip(names, x)}
                print(f"  ({cell} batch {batch}: exported and loaded into ONNX Runtime in "
                      f"{time.perf_counter() - t:.0f} s)", flush=True)
                med, best = timings(lambda: session.run(None, feed), args.repeats, args.warmup)
                print(f"time\t{cell}\t{batch}\tort\t{med!r}\t{best!r}", flush=True)
                del session
                for f in os.listdir(tmp):
                    os.remove(os.path.join(tmp, f))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
