"""Fixtures for tests/fine/test_fiber_fine.cpp and test_fine_init.cpp, from the OFFICIAL
fine-grained modules (GeneralizedVLRCNN's fusion_backbone, FPN and rpn.head: VLDyHead):

1. every state-dict key of the full-size FIBER-B (v2 and v3) with its shape, the modules built at
   the released configuration (Swin-B window 12, roberta-base widths, FPN 256, VLDyHead 256
   channels / 6 convs / 80 cls_logits). No weights are written.
2. the coarse -> fine key matching of the official align_and_update_state_dicts
   (utils/model_serialization.py) from tests/data/coarse/tiny_coarse.ckpt (FiberTinyCoarse, window
   4) into the tiny fine model (FiberTinyFine, window 7, v2 and v3), read from its log: which coarse
   key each fine key takes, and which it skips for their shapes (the relative-position tables).

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_fine_keys.py

Writes tests/data/fine/fiber_base_fine_keys.json: {"v2": {key: {"shape": [...]}}, "v3": ...}
(buffers marked "buffer": true) and tests/data/fine/coarse_to_fine_tiny.json:
{"v2": {"loaded": {fine key: coarse file key}, "skipped": {fine key: coarse file key}}, "v3": ...}.
"""
import logging

import json
import pathlib
import types

import torch
import transformers
from torch import nn

import fine_official
import make_fusion_backbone as mfb

ns = types.SimpleNamespace
official = fine_official.load_official()
OUT = mfb.OUT / "fiber_base_fine_keys.json"


def keys_stand_in():
    """layers/deform_conv.py's ModulatedDeformConv has weight and bias only (its CUDA op is not needed
    to list keys or to match them)."""
    class ModulatedDeformConv(nn.Module):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                     deformable_groups=1, bias=True):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
            self.bias = nn.Parameter(torch.empty(out_channels))
    return ModulatedDeformConv


def official_modules(version, full, deform_conv=None):
    """The official backbone body, text model, FPN and head: FIBER-B (full) or FiberTinyFine.
    deform_conv: the ModulatedDeformConv stand-in (default: parameters only, no forward)."""
    scope = mfb.official_scope(version, tiny=not full)
    scope.update(fine_official.head_scope(deform_conv or keys_stand_in()))
    if full:
        swin = scope["SwinTransformer"](patch_size=4, in_chans=3, embed_dim=128, depths=[2, 2, 18, 2],
                                        num_heads=[4, 8, 16, 32], window_size=12, drop_path_rate=0.4,
                                        backbone_arch="SWINT-FPN-RETINANET",
                                        out_features=["stage2", "stage3", "stage4", "stage5"])
        config = transformers.RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=12,
                                            num_attention_heads=12, intermediate_size=3072,
                                            max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                                            layer_norm_eps=1e-5)
        widths, channels = [0, 256, 512, 1024], 256
        cfg = fine_official.head_cfg()
    else:
        swin = scope["SwinTransformer"](patch_size=4, in_chans=3, embed_dim=8, depths=[2, 2, 18, 2],
                                        num_heads=[1, 1, 2, 4], window_size=7, drop_path_rate=0.0,
                                        backbone_arch="SWINT-FPN-RETINANET",
                                        out_features=["stage2", "stage3", "stage4", "stage5"])
        config = transformers.RobertaConfig(vocab_size=1000, hidden_size=mfb.TEXT, num_hidden_layers=12,
                                            num_attention_heads=2, intermediate_size=64, max_position_embeddings=42,
                                            type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5)
        widths, channels = [0, 16, 32, 64], 16
        cfg = fine_official.head_cfg(channels=16, convs=1, lang=mfb.TEXT, classes=6)
    text = mfb.TextModel(scope, config)
    fpn = scope["FPN"](widths, channels, conv_block=lambda i, o, k, s=1: nn.Conv2d(i, o, k, s, (k - 1) // 2),
                       top_blocks=scope["LastLevelP6P7"](channels, channels))
    head = scope["VLDyHead"](cfg)
    return swin, text, fpn, head


def state_dict(version, full):
    """{key: tensor} of the whole fine model under the checkpoint's names, buffers included."""
    swin, text, fpn, head = official_modules(version, full)
    out = {}

    def add(prefix, module):
        for name, p in module.state_dict(keep_vars=True).items():
            out[prefix + name] = p

    add("fusion_backbone.backbone.body.", swin)
    add("fusion_backbone.backbone.fpn.", fpn)
    add("fusion_backbone.language_backbone.body.model.", text)
    add("rpn.head.", head)
    add("rpn.anchor_generator.", official.anchor_generator.AnchorGenerator(
        ((64,), (128,), (256,), (512,), (1024,)), (1.0,), (8, 16, 32, 64, 128), 0))
    return out


def keys(version):
    out = {}
    for key, p in state_dict(version, full=True).items():
        out[key] = {"shape": list(p.shape)}
        if not isinstance(p, nn.Parameter):
            out[key]["buffer"] = True
    return out


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def coarse_matching(version):
    scope = {"torch": torch, "math": __import__("math"), "logging": logging,
             "defaultdict": __import__("collections").defaultdict, "OrderedDict": __import__("collections").OrderedDict}
    fine_official.exec_official_defs("utils/model_serialization.py",
                                     ["resize_2d", "align_and_update_state_dicts", "_group_checkpoint_keys",
                                      "_group_to_str"], scope)
    coarse = torch.load(mfb.ROOT / "tests/data/coarse/tiny_coarse.ckpt", map_location="cpu",
                        weights_only=False)["state_dict"]
    renamed = {k.replace("text_transformer.", "").replace("vit_model.", ""): k for k in coarse}
    assert len(renamed) == len(coarse)
    model = {k: v.detach() for k, v in state_dict(version, full=False).items()}
    capture = Capture()
    logger = logging.getLogger("serialization-fixture")
    logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    scope["__name__"] = "serialization-fixture"  # the official logger is getLogger(__name__)
    scope["align_and_update_state_dicts"](model, coarse)
    loaded, skipped = {}, {}
    for line in capture.lines:
        if line.startswith("Skip due to size mismatch: "):
            old, new = line[len("Skip due to size mismatch: "):].strip().rstrip(".").split(" -> ")
            skipped[new] = renamed[old]
        elif " loaded from " in line:
            new, rest = line.split(" loaded from ")
            loaded[new.strip()] = renamed[rest.split(" of shape ")[0].strip()]
    assert loaded, capture.lines[:5]
    return {"loaded": loaded, "skipped": skipped}


if __name__ == "__main__":
    result = {v: keys(v) for v in ("v2", "v3")}
    OUT.write_text(json.dumps(result, indent=0, sort_keys=True) + "\n")
    print({v: len(k) for v, k in result.items()}, OUT.stat().st_size, "bytes")
    matching = {v: coarse_matching(v) for v in ("v2", "v3")}
    path = mfb.OUT / "coarse_to_fine_tiny.json"
    path.write_text(json.dumps(matching, indent=0, sort_keys=True) + "\n")
    print({v: (len(m["loaded"]), len(m["skipped"])) for v, m in matching.items()}, path.stat().st_size, "bytes")
