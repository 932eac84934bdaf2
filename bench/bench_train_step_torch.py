"""Reference side of bench_train_step: one coarse pre-training step of the OFFICIAL FIBER code
(objectives.compute_mlm, compute_itc, compute_itm_hardneg as FIBERTransformerSS.forward calls them,
then backward of the summed loss and an AdamW step), in training mode (dropout, drop path), on random
weights and inputs, timed with the same batch and threads as ours. Configurations:
  base  FIBER-B 384 (tests/reference/make_coarse_full.py), text length 40, queue 16
  base224  the same FIBER-B at 224 px (window 7): batch 8 of FIBER-B 384 needs ~30 GB, more
        than a 24 GiB machine has
  tiny  models::FiberTinyCoarse (tests/reference/make_coarse.py's TINY: the official schedule at
        small widths, 128 px) with the official dropout and drop path (0.1), queue 16
  demo  the demo model (models::FiberDemoCoarse: 64 px, Swin 32..256 1/1/3/1, text 64 x 4 layers),
        which the official infer() cannot build (it hard-codes 18 stage-3 blocks and 12 text
        layers): not available here.
Prints 'time<TAB>median<TAB>best' (seconds) and 'rss<TAB>peak MiB' (ru_maxrss of this process).

    PY=$(../shared/tools/reference-env); $PY bench/bench_train_step_torch.py --config base --batch 1 --threads 2
"""
import argparse
import copy
import os
import resource
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import coarse_official as co  # noqa: E402
import make_coarse  # noqa: E402
import make_coarse_full  # noqa: E402
import make_coarse_losses  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="base", choices=["base", "base224", "tiny"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    ns = co.load_official()
    if args.config in ("base", "base224"):
        cfg = make_coarse_full.config(reduced=False)
        if args.config == "base224":
            cfg["fiber"]["image_size"] = cfg["fiber"]["resolution_before"] = 224
    else:  # FiberTinyCoarse, with the C++ config's training-mode rates (the fixture runs them at 0)
        cfg = copy.deepcopy(make_coarse.TINY)
        cfg["swin"]["drop_path_rate"] = 0.1
        cfg["text"]["hidden_dropout_prob"] = cfg["text"]["attention_probs_dropout_prob"] = 0.1
        cfg["fiber"]["drop_rate"] = 0.1
    cfg["queue"] = 16
    model = co.build_model(ns, cfg)
    co.randomize(model, seed=1, bf16_exact=False)
    make_coarse_losses.prepare(model, ns)
    with torch.no_grad():
        model.queue_total[0] = 16
    n, L, B = cfg["fiber"]["image_size"], cfg["fiber"]["max_text_len"], args.batch
    g = torch.Generator().manual_seed(3)
    image = torch.randn(B, 3, n, n, generator=g)
    V = cfg["fiber"]["vocab_size"]
    ids = torch.randint(3, V - 1, (B, L), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2
    masks = torch.ones(B, L, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    labels[:, 1:7] = ids[:, 1:7]
    mlm_ids = ids.clone()
    mlm_ids[:, 1:7] = V - 1
    model.train()
    # The official optimiser (FIBER's objectives.set_schedule): AdamW, betas (0.9, 0.98), eps 1e-8,
    # weight decay 0.01 (the per-group decay and lr multipliers do not change the work).
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01)

    def step():
        batch = {"text": ["caption"] * B, "image": [image], "text_ids": ids, "text_masks": masks,
                 "text_labels": labels, "text_ids_mlm": mlm_ids, "text_labels_mlm": labels}
        model.zero_grad(set_to_none=True)
        mlm = ns.objectives.compute_mlm(model, batch)
        itc, image_neg, text_neg, text_mask_neg = ns.objectives.compute_itc(model, batch)
        itm = ns.objectives.compute_itm_hardneg(model, batch, image_neg, text_neg, text_mask_neg)
        (mlm["mlm_loss"] + itc["itc_loss"] + itm["itm_loss"]).backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    wall = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        wall.append(time.perf_counter() - t0)
    print(f"time\t{statistics.median(wall):.6f}\t{min(wall):.6f}")
    print(f"rss\t{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")


if __name__ == "__main__":
    main()
