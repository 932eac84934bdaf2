#!/usr/bin/env python3
"""Writes tests/data/coarse_losses/: one coarse pre-training step (MLM + ITC + ITM with hard
negatives) of the OFFICIAL microsoft/FIBER code (objectives.compute_mlm, compute_itc,
compute_itm_hardneg, FIBERTransformerSS._dequeue_and_enqueue; extracted at run time, see
coarse_official.py) on a small configuration, with its random choices recorded so that the C++
side can be fed the same ones:
  - the MLM masking (HF DataCollatorForLanguageModeling's rule, drawn here with torch) -> the
    masked ids and labels the official batch carries as text_ids_mlm / text_labels_mlm;
  - the hard negatives: torch.multinomial is wrapped to record the indices it draws (first the B
    image negatives, then the B text negatives, in the official loop order).
Saved: weights, inputs, the queue before and after the step, the fed choices, each loss and the
losses in float32 and float64, and the float64 gradient of every parameter (the float32 official
gradients differ from it by the amount printed at the end).

    PY=$(cat /tmp/refenv.path)
    $PY tests/reference/make_coarse_losses.py [--mirror /work/.mirror/microsoft+FIBER/repo]
"""
import argparse
import copy
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coarse_official as co  # noqa: E402

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "coarse_losses"))

# The C++ test's FiberLossTinyCoarse: the official schedule (the official infer() hard-codes stage-3
# depth 18, stage-4 depth 2 and 12 text layers) at the smallest widths (Swin 4..32, text 16) and
# 64 px (window 2: stage 3's 4x4 map is shifted, stage 4's 2x2 is not), so that the float64
# gradients of every parameter fit in a small file.
VOCAB = 200
MAX_LEN = 16
CFG = {
    "swin": {"embed_dim": 4, "depths": [2, 2, 18, 2], "num_heads": [1, 1, 1, 2], "drop_path_rate": 0.0},
    "text": {"vocab_size": VOCAB, "hidden_size": 16, "num_hidden_layers": 12, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 20, "type_vocab_size": 1,
             "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
             "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    "fiber": {"image_size": 64, "resolution_before": 64, "input_image_embed_size": 32,
              "input_text_embed_size": 16, "hidden_size": 16, "num_heads": 2, "num_layers": 12, "mlp_ratio": 4,
              "vocab_size": VOCAB, "max_text_len": MAX_LEN, "drop_rate": 0.0, "num_fuse_block": 6, "itc_pooler": True,
              "vqav2_label_size": 3129,
              "loss_names": {"itm": 1, "itc": 1, "mlm": 1, "vqa": 0, "nlvr2": 0, "caption_mle": 0,
                             "caption_gold": 0, "caption_cider": 0}},
    "queue": 6,
}
B = 3
QUEUE_FILLED = 4  # queue_total: 4 of the 6 entries hold samples (the rest are never candidates)
MASK_ID = VOCAB - 1
SPECIAL = [0, 1, 2, 3, MASK_ID]


def make_batch(g):
    image = torch.randn(B, 3, 64, 64, generator=g)
    ids = torch.ones(B, MAX_LEN, dtype=torch.long)
    for b, n in enumerate([14, 9, 6]):  # real tokens with <s> and </s>
        ids[b, 0], ids[b, n - 1] = 0, 2
        ids[b, 1:n - 1] = torch.randint(4, MASK_ID, (n - 2,), generator=g)
    masks = (ids != 1).long()
    return image, ids, masks


def mask_tokens(ids, g, p=0.3):
    """HF DataCollatorForLanguageModeling.torch_mask_tokens (p raised to 0.3 so that every row has
    masked tokens; the rule is the same)."""
    labels = ids.clone()
    prob = torch.full(ids.shape, p)
    special = torch.zeros(ids.shape, dtype=torch.bool)
    for s in SPECIAL:
        special |= ids == s
    prob.masked_fill_(special, 0.0)
    chosen = torch.bernoulli(prob, generator=g).bool()
    labels[~chosen] = -100
    replaced = torch.bernoulli(torch.full(ids.shape, 0.8), generator=g).bool() & chosen
    out = ids.clone()
    out[replaced] = MASK_ID
    random = torch.bernoulli(torch.full(ids.shape, 0.5), generator=g).bool() & chosen & ~replaced
    words = torch.randint(VOCAB, ids.shape, generator=g)
    out[random] = words[random]
    return out, labels


def prepare(model, ns):
    """What a Lightning training step has around objectives.*: metric callables, log(), and one
    process for the queue's all_gather."""
    for name in ["train_mlm_loss", "train_mlm_accuracy", "train_itc_loss", "train_itm_loss", "train_itm_accuracy"]:
        object.__setattr__(model, name, lambda *a: a[0])
    model.log = lambda *a, **k: None
    object.__setattr__(model, "device", torch.device("cpu"))
    ns.fiber_module.concat_all_gather = lambda t: t


def run_step(model, ns, batch, drawn, replay=None):
    """The official forward for tasks mlm, itc, itm (FIBERTransformerSS.forward's order)."""
    model.train()
    model.zero_grad(set_to_none=True)
    orig = torch.multinomial
    it = iter(replay) if replay is not None else None

    def multinomial(weights, n, *a, **k):
        if it is not None:
            return torch.tensor([next(it)])
        r = orig(weights, n, *a, **k)
        drawn.append(int(r.item()))
        return r

    torch.multinomial = multinomial
    try:
        b = dict(batch)
        mlm = ns.objectives.compute_mlm(model, b)
        itc, image_neg, text_neg, text_mask_neg = ns.objectives.compute_itc(model, b)
        itm = ns.objectives.compute_itm_hardneg(model, b, image_neg, text_neg, text_mask_neg)
    finally:
        torch.multinomial = orig
    total = mlm["mlm_loss"] + itc["itc_loss"] + itm["itm_loss"]
    total.backward()
    return {"mlm": mlm["mlm_loss"], "itc": itc["itc_loss"], "itm": itm["itm_loss"], "total": total}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", default=co.DEFAULT_MIRROR)
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    ns = co.load_official(args.mirror, args.rev)
    model = co.build_model(ns, CFG)
    co.randomize(model, seed=20261205)
    with torch.no_grad():
        model.temp.fill_(1.3)  # clamped to 1 by compute_itc: the clamp is part of the parity
        model.queue_total[0] = QUEUE_FILLED
        model.queue_ptr[0] = QUEUE_FILLED
    prepare(model, ns)
    queue_before = {k: getattr(model, k).clone() for k in co.QUEUE_KEYS}

    g = torch.Generator().manual_seed(99)
    image, ids, masks = make_batch(g)
    mlm_ids, mlm_labels = mask_tokens(ids, g)
    batch = {"text": ["caption"] * B, "image": [image], "text_ids": ids, "text_masks": masks, "text_labels": torch.full_like(ids, -100),
             "text_ids_mlm": mlm_ids, "text_labels_mlm": mlm_labels}
    weights = co.plain_weights(model)  # before the step (the step changes no weight, only temp's clamp)

    torch.manual_seed(5)
    drawn = []
    losses = run_step(model, ns, batch, drawn)
    assert len(drawn) == 2 * B, drawn
    grads = {f"grad.{n}": p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    # Parameters the step does not reach (the official modules hold them but never use them: alpha_t2i
    # of the unfused layers, the t2i output LayerNorm bypassed by the changed residual, the text
    # pooler, the rank_output tie): the C++ side must leave them without a gradient too.
    assert "rank_output.weight" in missing and "temp" not in missing, missing
    queue_after = {f"after.{k}": getattr(model, k).clone() for k in co.QUEUE_KEYS}

    # The same step in float64 from the same state, with the same draws replayed.
    m64 = co.build_model(ns, CFG)
    m64.load_state_dict({**weights, **{k: v for k, v in queue_before.items()}}, strict=False)
    with torch.no_grad():
        m64.temp.fill_(1.3)
    m64 = m64.double()
    for k in co.QUEUE_KEYS:
        v = queue_before[k]
        setattr(m64, k, v.double() if v.is_floating_point() else v.clone())
    prepare(m64, ns)
    b64 = dict(batch, image=[image.double()])
    losses64 = run_step(m64, ns, b64, [], replay=drawn)
    grads64 = {f"grad.{n}": p.grad.detach().clone() for n, p in m64.named_parameters() if p.grad is not None}

    os.makedirs(args.out, exist_ok=True)
    p = lambda name: os.path.join(args.out, name)  # noqa: E731
    meta = {"official_commit": ns.commit, "config": json.dumps(CFG), "batch": str(B),
            "queue_filled": str(QUEUE_FILLED), "mask_id": str(MASK_ID), "no_gradient": json.dumps(missing)}
    save_file({k: v.contiguous() for k, v in weights.items()}, p("weights.safetensors"), metadata=meta)
    step = {"image": image, "text_ids": ids, "text_masks": masks, "mlm_ids": mlm_ids, "mlm_labels": mlm_labels,
            "image_negatives": torch.tensor(drawn[:B]), "text_negatives": torch.tensor(drawn[B:])}
    step.update({f"before.{k}": v for k, v in queue_before.items()})
    # The pixels entering the queue are the batch's (checked from before.* and image): not stored twice.
    step.update({k: v for k, v in queue_after.items() if k != "after.image_input_queue"})
    step.update({f"loss.{k}": v.detach().reshape([]) for k, v in losses.items()})
    step.update({f"loss64.{k}": v.detach().reshape([]) for k, v in losses64.items()})
    step.update({f"after64.{k}": v for k, v in [(k, getattr(m64, k)) for k in ["image_queue", "text_queue"]]})
    step.update(grads64)  # the yardstick: the official step in float64
    save_file({k: v.contiguous() for k, v in step.items()}, p("step.safetensors"), metadata=meta)
    # Relative to each tensor's largest gradient, floored at 1e-3 of the largest of all (some are 0 in
    # exact arithmetic, e.g. the key biases: softmax ignores a constant shift).
    floor = 1e-3 * max(float(v.abs().max()) for v in grads64.values())
    diffs = {k: float((grads[k].double() - grads64[k]).abs().max()) / max(float(grads64[k].abs().max()), floor)
             for k in grads}
    worst = max(diffs, key=diffs.get)
    print("losses f32:", {k: float(v) for k, v in losses.items()})
    print("losses f64:", {k: float(v) for k, v in losses64.items()})
    print("negatives:", drawn, "| official f32 vs f64 worst gradient (rel. to max):", worst, diffs[worst])
    print("files:", {n: os.path.getsize(p(n)) for n in ["weights.safetensors", "step.safetensors"]})


if __name__ == "__main__":
    main()
