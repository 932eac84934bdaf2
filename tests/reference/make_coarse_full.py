#!/usr/bin/env python3
"""A FIBER-B sized coarse checkpoint with random weights (NOT committed: about 1.1 GB) and the
OFFICIAL modules' outputs for one image and one text, for end-to-end checks of `fiber embed` /
`fiber match` on a real-sized model. Same machinery as make_coarse.py (coarse_official.py).

    PY=$(cat /tmp/refenv.path)
    $PY tests/reference/make_coarse_full.py /path/to/fiber_b_random.ckpt            # ~3 GB RAM, ~1 min
    $PY tests/reference/make_coarse_full.py /tmp/fiber_reduced.ckpt --reduced        # small shapes, seconds

Writes, for OUT = path/to/NAME.ckpt:
  NAME.ckpt                     Lightning 1.3-style checkpoint (state_dict under official keys, small
                                ITC queue buffers that a loader must skip, rank_output tied to ITM row 1)
  NAME.png                      the input image (384 x 384 RGB, so the official resize is the identity)
  NAME.inputs.safetensors       image [1, 3, S, S] f32 (RGB/255, mean (0.485, 0.456, 0.406), std
                                (0.229, 0.224, 0.225)), text_ids [1, 40] int64, text_masks [1, 40] int64
  NAME.reference.safetensors    float32 outputs, names as in tests/data/coarse/README.md:
                                itc.image.embedding [1, 768], itc.text.embedding [1, 768],
                                itc_similarity [1, 1], itm_logits [1, 2], rank_score [1, 1],
                                fused.cls_feats [1, 1536], fused.text_feats, fused.image_feats,
                                mlm_logits [1, 40, 50265], and (unless --no-intermediates) every
                                block / layer output of the three passes.
The text is tokenised with the project's test tokenizer (tests/data/text/vocab.json, merges.txt;
its ids are < 4001, valid in a 50265-entry vocabulary) as <s> ... </s>, padded with <pad> to 40
(max_text_len) as the official collate does. Outputs do not depend on the padding length.
"""
import argparse
import copy
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coarse_official as co  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT_DIR = os.path.normpath(os.path.join(HERE, "..", "data", "text"))
LOSSES = {"itm": 1, "itc": 1, "mlm": 1, "vqa": 0, "nlvr2": 0, "caption_mle": 0, "caption_gold": 0,
          "caption_cider": 0}


def config(reduced):
    if not reduced:  # FIBER-B coarse pretraining (config.py defaults, roberta-base, Swin-B 384)
        swin = {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "drop_path_rate": 0.1}
        n, hid, heads, vocab, img_dim = 384, 768, 12, 50265, 1024
    else:  # same code path, small shapes (a check that the script runs)
        swin = {"embed_dim": 16, "depths": [2, 2, 18, 2], "num_heads": [1, 2, 4, 8], "drop_path_rate": 0.1}
        n, hid, heads, vocab, img_dim = 128, 64, 4, 4001, 128
    text = {"vocab_size": vocab, "hidden_size": hid, "num_hidden_layers": 12, "num_attention_heads": heads,
            "intermediate_size": 4 * hid, "max_position_embeddings": 514, "type_vocab_size": 1,
            "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "hidden_act": "gelu"}
    fiber = {"image_size": n, "resolution_before": n, "input_image_embed_size": img_dim,
             "input_text_embed_size": hid, "hidden_size": hid, "num_heads": heads, "num_layers": 12,
             "mlp_ratio": 4, "vocab_size": vocab, "max_text_len": 40, "drop_rate": 0.1, "num_fuse_block": 6,
             "itc_pooler": True, "vqav2_label_size": 3129, "loss_names": dict(LOSSES)}
    return {"swin": swin, "text": text, "fiber": fiber, "queue": 4}


def make_image(n):
    """A smooth synthetic RGB image with a few discs (uint8 [n, n, 3])."""
    y, x = np.mgrid[0:n, 0:n] / n
    img = np.stack([0.5 + 0.4 * np.sin(6 * x + 1), 0.5 + 0.4 * np.cos(5 * y), 0.3 + 0.5 * x * y], -1)
    for cx, cy, r, col in [(0.3, 0.35, 0.12, (0.9, 0.2, 0.1)), (0.7, 0.6, 0.18, (0.1, 0.3, 0.9)),
                           (0.5, 0.8, 0.08, (0.95, 0.9, 0.2))]:
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = col
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def normalise(rgb):
    t = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return ((t - mean) / std).unsqueeze(0)


def tokenize(text, max_len):
    from tokenizers import ByteLevelBPETokenizer
    tok = ByteLevelBPETokenizer(os.path.join(TEXT_DIR, "vocab.json"), os.path.join(TEXT_DIR, "merges.txt"),
                                add_prefix_space=False)
    ids = [0] + tok.encode(text).ids[: max_len - 2] + [2]
    mask = [1] * len(ids) + [0] * (max_len - len(ids))
    ids = ids + [1] * (max_len - len(ids))
    return torch.tensor([ids]), torch.tensor([mask])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="checkpoint path to write (NAME.ckpt); the other files go beside it")
    ap.add_argument("--mirror", default=co.DEFAULT_MIRROR)
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--reduced", action="store_true", help="small shapes instead of FIBER-B (quick check)")
    ap.add_argument("--text", default="a photo of a cat")
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--no-intermediates", action="store_true", help="only the final outputs")
    args = ap.parse_args()
    torch.manual_seed(0)

    cfg = config(args.reduced)
    ns = co.load_official(args.mirror, args.rev)
    model = co.build_model(ns, cfg)
    co.randomize(model, seed=args.seed)
    n = cfg["fiber"]["image_size"]
    rgb = make_image(n)
    image = normalise(rgb)
    ids, masks = tokenize(args.text, cfg["fiber"]["max_text_len"])

    out, _, _ = co.run_reference(model, image, ids, masks)
    finals = ["itc.image.embedding", "itc.text.embedding", "itc_similarity", "itm_logits", "rank_score",
              "fused.cls_feats", "fused.text_feats", "fused.image_feats", "mlm_logits"]
    keep = out if not args.no_intermediates else {k: out[k] for k in finals}

    stem = args.out[:-5] if args.out.endswith(".ckpt") else args.out
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    meta = {"official_commit": ns.commit, "config": json.dumps(cfg), "text": args.text}
    from PIL import Image
    Image.fromarray(rgb).save(stem + ".png")
    save_file({"image": image.contiguous(), "text_ids": ids, "text_masks": masks}, stem + ".inputs.safetensors",
              metadata=meta)
    save_file({k: v.float().contiguous().clone() for k, v in keep.items()}, stem + ".reference.safetensors",
              metadata=meta)
    torch.save(co.checkpoint_dict(model, {"config": copy.deepcopy(model.hparams.config)}), args.out)
    del model

    n_params = sum(v.numel() for k, v in torch.load(args.out, map_location="cpu", weights_only=True,
                                                     mmap=True)["state_dict"].items() if k not in co.QUEUE_KEYS)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e9:.2f} GB, {n_params / 1e6:.1f}M values without "
          f"queues), {stem}.png, {stem}.inputs.safetensors, {stem}.reference.safetensors")
    print("text", repr(args.text), "ids", ids[0, : int(masks.sum())].tolist())
    for k in ["itc_similarity", "itm_logits", "rank_score"]:
        print(f"  {k}: {out[k].flatten().tolist()}")


if __name__ == "__main__":
    main()
