#!/usr/bin/env python3
"""Writes tests/data/backbones/: tiny public backbones with random weights, saved by the libraries
users get them from, for `fiber init coarse --config tiny` (FiberTinyCoarse shapes):

  swin_timm.safetensors     timm 1.x `swin_base_patch4_window12_384` at the tiny shapes, its own
                            state_dict (downsample at the START of stages 1-3, `head.fc.*`, no
                            index/mask buffers), saved with safetensors' save_file (float16).
  swin_ms.pth               the same weights in Microsoft's original layout: {"model": state_dict},
                            downsample at the END of stages 0-2, `head.*`, relative_position_index
                            and attn_mask buffers (what swin_base_patch4_window12_384_22k.pth holds).
  roberta_mlm/model.safetensors   transformers RobertaForMaskedLM.save_pretrained: `roberta.` prefix,
                            `lm_head.*`, no pooler (float16).
  roberta_model.bin         a RobertaModel state_dict with pooler and without prefix, plus the
                            `embeddings.position_ids` buffer older transformers saved, torch.save'd.
  resize.safetensors        relative-position tables resized by the OFFICIAL swin_adapt_position_encoding
                            (microsoft/FIBER swin_helpers.py; see coarse_official.py): window 4 -> 6
                            and 6 -> 4 (image 128 <-> 192), 3 heads.

    PY=$(cat /tmp/refenv.path)   # or /root/.cache/fiber-ref-venv/bin/python
    $PY tests/reference/make_backbones.py

float16 keeps the Swin file small (the tiny Swin still has 1.3 M parameters); the .pth and .bin
store each tensor as a view into one shared storage (torch.save writes a storage once), so they
also exercise storage offsets. Fixed seeds.
"""
import importlib
import os
import re
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "backbones"))

SWIN = dict(embed_dim=8, depths=(2, 2, 18, 2), num_heads=(1, 1, 2, 4), img_size=128, window_size=4, num_classes=10)
TEXT = dict(vocab_size=1000, hidden_size=16, num_hidden_layers=12, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=42, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
            eos_token_id=2)


def randomize(module, seed):
    """Every parameter N(0, 0.5) (distinct values, far from any init rule), float16-exact."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in module.named_parameters():
            p.copy_((torch.randn(p.shape, generator=g) * 0.5).half().float())


def shared_storage(sd, seed):
    """Each floating tensor becomes a view at its own offset into one float16 storage."""
    g = torch.Generator().manual_seed(seed)
    biggest = max(v.numel() for v in sd.values())
    big = (torch.randn(biggest + 4 * len(sd), generator=g) * 0.5).half()
    out = {}
    for i, (k, v) in enumerate(sd.items()):
        if v.is_floating_point():
            out[k] = big[3 * i: 3 * i + v.numel()].view(v.shape)
        else:
            out[k] = v
    return out


def swin_files():
    import timm
    model = timm.create_model("swin_base_patch4_window12_384", pretrained=False, **SWIN)
    randomize(model, 1)
    sd = {k: v.half().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(OUT, "swin_timm.safetensors"), metadata={"format": "pt"})

    # Microsoft's layout: the same weights, downsample moved to the end of the previous stage,
    # head.fc -> head, and the buffers the original code registered persistently.
    ms = {}
    buffers = dict(model.named_buffers())
    for k, v in sd.items():
        k2 = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", k)
        k2 = k2.replace("head.fc.", "head.")
        ms[k2] = v
        if k.endswith("attn.relative_position_bias_table"):
            ms[k2.replace("relative_position_bias_table", "relative_position_index")] = \
                buffers[k.replace("relative_position_bias_table", "relative_position_index")]
            mask_key = k.replace("attn.relative_position_bias_table", "attn_mask")
            if mask_key in buffers and buffers[mask_key] is not None:
                ms[mask_key.replace("attn.relative_position_bias_table", "attn_mask")] = buffers[mask_key].float()
    # The original file keeps every block's tensors in module order; ours by key.
    order = sorted(ms, key=lambda k: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", k)])
    ms = shared_storage({k: ms[k] for k in order}, 2)
    torch.save({"model": ms}, os.path.join(OUT, "swin_ms.pth"))
    return sd


def roberta_files():
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaModel
    cfg = RobertaConfig(**TEXT)
    mlm = RobertaForMaskedLM(cfg)
    randomize(mlm, 3)
    mlm.half().save_pretrained(os.path.join(OUT, "roberta_mlm"), safe_serialization=True)
    for extra in os.listdir(os.path.join(OUT, "roberta_mlm")):
        if extra != "model.safetensors":
            os.remove(os.path.join(OUT, "roberta_mlm", extra))

    base = RobertaModel(cfg)  # with pooler
    randomize(base, 4)
    sd = dict(base.state_dict())
    sd["embeddings.position_ids"] = torch.arange(TEXT["max_position_embeddings"]).unsqueeze(0)
    torch.save(shared_storage(sd, 5), os.path.join(OUT, "roberta_model.bin"))


def resize_fixture():
    import coarse_official as co
    co.load_official()
    helpers = importlib.import_module("fiber_official.modules.swin_helpers")
    g = torch.Generator().manual_seed(6)
    heads = 3
    w4 = torch.randn(7 * 7, heads, generator=g)
    w6 = torch.randn(11 * 11, heads, generator=g)
    up = helpers.swin_adapt_position_encoding({"a.relative_position_bias_table": w4.clone()}, before=128, after=192)
    down = helpers.swin_adapt_position_encoding({"a.relative_position_bias_table": w6.clone()}, before=192, after=128)
    save_file({"w4": w4, "w6": w6, "w4_to_w6": up["a.relative_position_bias_table"].contiguous(),
               "w6_to_w4": down["a.relative_position_bias_table"].contiguous()},
              os.path.join(OUT, "resize.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    swin_files()
    roberta_files()
    resize_fixture()  # last: load_official() replaces timm in sys.modules with stand-ins
    total = 0
    for root, _, files in os.walk(OUT):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
            print(os.path.relpath(os.path.join(root, f), OUT), os.path.getsize(os.path.join(root, f)))
    print("total", total)


if __name__ == "__main__":
    main()
