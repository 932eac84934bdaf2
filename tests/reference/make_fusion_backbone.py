"""Fixtures for tests/fine/test_fusion_backbone.cpp: the OFFICIAL fine-grained fusion backbone
(microsoft/FIBER fine_grained/maskrcnn_benchmark: FusionSwinTransformer of
modeling/backbone/fusion_swin_transformer_v2.py and _v3.py, the text layers of
modeling/language_backbone/roberta_fused_model_v2.py) on a tiny configuration, in float64.

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_fusion_backbone.py

The class definitions are taken from the mirror at run time and executed; nothing of them is
committed. The official code writes three widths as literals, which the tiny configuration changes
(each replacement must match exactly once):
  BasicLayer / SwinTransformer  dim_text=(768 ...)      -> the tiny text width 16
  RobertaSelfAttention          nn.Linear(512 / 1024, ...) -> the tiny stage-3 / stage-4 widths 32 / 64
The fusion schedule stays the official one (text layers 0-5 alone, stage-3 blocks 14-17 with text
layers 6-9, stage 4 with 10-11), so the tiny Swin keeps depths (2, 2, 18, 2) and RoBERTa 12 layers.

Around the official modules, what FusionSwinTransformer reaches through its wrappers:
- backbone.body = SwinTransformer (RETINANET: norm0 Identity), backbone.fpn = a recorder returning
  its inputs (the FPN has its own fixture, make_dyhead.py);
- language_backbone.body = RobertaFusedEncoder (its get_aggregated_output, USE_DOT_PRODUCT_TOKEN_LOSS)
  whose .model holds the official RobertaEmbeddings and RobertaEncoder and transformers 4.x's
  get_extended_attention_mask ((1 - mask) * -10000 as [B, 1, 1, L]).

Tiny configuration: Swin embed 8, depths (2, 2, 18, 2), heads (1, 1, 2, 4), window 7, drop path 0;
RoBERTa width 16, 2 heads, 12 layers, FFN 64, 1000 tokens, 42 positions; eval mode (no dropout).
Two images [2, 3, 96, 160] (the C++ test gives 90 x 150 and lets the model zero-pad them), so the
stage maps 24x40, 12x20, 6x10, 3x5 all pad to the window 7 and every odd block shifts. Text [2, 9]
with the second row's last 3 tokens padding.

Writes tests/data/fine/fusion_{v2,v3}_weights.safetensors (keys fusion_backbone.backbone.body.* and
fusion_backbone.language_backbone.body.model.*, the official names) and fusion_{v2,v3}_io.safetensors:
images (the unpadded 90 x 150), ids, mask, c2..c5, hidden, embedded, and for the loss
L = sum_k <out_k, r_k> (r_k = probe.<name>, fixed random tensors) its gradient grad.images; and
fusion_{v2,v3}_grads.safetensors: grad.<parameter key> (float32) for every parameter (v2) or the
i2t parameters (v3). Weights are
float32 (the float64 reference runs on exactly those values).
"""
import pathlib
import types

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
import transformers
from safetensors.torch import save_file
from timm.models.layers import DropPath, to_2tuple, trunc_normal_
from torch import nn

import fine_official

try:
    from transformers.pytorch_utils import apply_chunking_to_forward
except ImportError:  # older transformers
    from transformers.modeling_utils import apply_chunking_to_forward
from transformers.activations import ACT2FN

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/data/fine"
TEXT, STAGE3, STAGE4 = 16, 32, 64

SWIN_NAMES = ["Mlp", "window_partition", "window_reverse", "WindowAttention", "SwinTransformerBlock",
              "PatchMerging", "BasicLayer", "PatchEmbed", "SwinTransformer", "FusionSwinTransformer"]
SWIN_WIDTHS = [("dim_text=(768 if i >= 14 else dim_text)", f"dim_text=({TEXT} if i >= 14 else dim_text)"),
               ("dim_text=(768 if i_layer == 3 else None)", f"dim_text=({TEXT} if i_layer == 3 else None)")]
TEXT_NAMES = ["RobertaFusedEncoder", "RobertaEmbeddings", "RobertaSelfAttention", "RobertaSelfOutput",
              "RobertaAttention", "RobertaIntermediate", "RobertaOutput", "RobertaLayer", "RobertaEncoder",
              "create_position_ids_from_input_ids"]
TEXT_WIDTHS = [("""                self.key = nn.Linear(512, self.all_head_size)
                self.value = nn.Linear(512, self.all_head_size)""",
                f"""                self.key = nn.Linear({STAGE3}, self.all_head_size)
                self.value = nn.Linear({STAGE3}, self.all_head_size)"""),
               ("""                self.key = nn.Linear(1024, self.all_head_size)
                self.value = nn.Linear(1024, self.all_head_size)""",
                f"""                self.key = nn.Linear({STAGE4}, self.all_head_size)
                self.value = nn.Linear({STAGE4}, self.all_head_size)""")]


def official_scope(version, tiny=True):
    scope = dict(torch=torch, nn=nn, F=F, np=np, math=__import__("math"), checkpoint=checkpoint, Optional=None,
                 DropPath=DropPath, to_2tuple=to_2tuple, trunc_normal_=trunc_normal_, ACT2FN=ACT2FN,
                 apply_chunking_to_forward=apply_chunking_to_forward, RobertaConfig=transformers.RobertaConfig)
    from typing import Optional
    scope["Optional"] = Optional
    fine_official.exec_official_defs(f"modeling/backbone/fusion_swin_transformer_{version}.py", SWIN_NAMES, scope,
                                     replace=SWIN_WIDTHS if tiny else ())
    fine_official.exec_official_defs("modeling/language_backbone/roberta_fused_model_v2.py", TEXT_NAMES, scope,
                                     replace=TEXT_WIDTHS if tiny else ())
    return scope


class FpnRecorder(nn.Module):
    def forward(self, outs):
        return outs


class TextModel(nn.Module):
    """What FusionSwinTransformer uses of language_backbone.body.model: embeddings, encoder.layer and
    transformers 4.x's get_extended_attention_mask."""

    def __init__(self, scope, config):
        super().__init__()
        self.embeddings = scope["RobertaEmbeddings"](config)
        self.encoder = scope["RobertaEncoder"](config)

    def get_extended_attention_mask(self, mask, shape, device=None):
        dtype = self.embeddings.word_embeddings.weight.dtype
        return (1.0 - mask[:, None, None, :].to(dtype)) * -10000.0


def build(version, seed):
    scope = official_scope(version)
    torch.manual_seed(seed)
    swin = scope["SwinTransformer"](patch_size=4, in_chans=3, embed_dim=8, depths=[2, 2, 18, 2], num_heads=[1, 1, 2, 4],
                                    window_size=7, drop_path_rate=0.0, backbone_arch="SWINT-FPN-RETINANET",
                                    out_features=["stage2", "stage3", "stage4", "stage5"])
    config = transformers.RobertaConfig(vocab_size=1000, hidden_size=TEXT, num_hidden_layers=12, num_attention_heads=2,
                                        intermediate_size=64, max_position_embeddings=42, type_vocab_size=1,
                                        pad_token_id=1, layer_norm_eps=1e-5, hidden_act="gelu")
    config.chunk_size_feed_forward = 0
    encoder = scope["RobertaFusedEncoder"].__new__(scope["RobertaFusedEncoder"])
    nn.Module.__init__(encoder)
    encoder.cfg = types.SimpleNamespace(MODEL=types.SimpleNamespace(DYHEAD=types.SimpleNamespace(
        FUSE_CONFIG=types.SimpleNamespace(USE_DOT_PRODUCT_TOKEN_LOSS=True))))
    encoder.model = TextModel(scope, config)
    backbone = nn.Module()
    backbone.body, backbone.fpn = swin, FpnRecorder()
    language = nn.Module()
    language.body = encoder
    model = scope["FusionSwinTransformer"](backbone, language).double().eval()
    # Every parameter random (the official inits leave gates, biases and norms at 0 / 1, which would
    # hide a wrong gate or a missing norm), then rounded to float32: the weights file stores float32
    # and the float64 run uses exactly those values.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("relative_position_bias_table"):
                p.normal_(0, 0.5)
            elif "alpha" in name:
                p.uniform_(0.5, 1.5)
            elif ("norm" in name or "LayerNorm" in name) and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif p.dim() == 1:
                p.normal_(0, 0.2)
            else:
                p.normal_(0, 1.0 / p.shape[-1] ** 0.5 if p.dim() == 2 else 0.3)
            p.copy_(p.float().double())
    return model


def state_dict_keys(model):
    """Official names under the fine-grained checkpoint's prefix (the model is GeneralizedVLRCNN.fusion_backbone);
    the recorder FPN has no weights; buffers (relative_position_index, position_ids) are not weights."""
    out = {}
    for name, p in model.named_parameters():
        out["fusion_backbone." + name] = p.detach().float().contiguous()
    return out


def make(version, seed, all_gradients):
    model = build(version, seed)
    g = torch.Generator().manual_seed(seed + 1)
    images = torch.randn(2, 3, 90, 150, generator=g, dtype=torch.float64)
    padded = F.pad(images, (0, 10, 0, 6)).requires_grad_(True)
    ids = torch.randint(3, 1000, (2, 9), generator=g)
    ids[:, 0], ids[0, 8], ids[1, 5] = 0, 2, 2
    ids[1, 6:] = 1
    mask = (ids != 1).long()
    visual, lang, _ = model({"input_ids": ids, "attention_mask": mask}, types.SimpleNamespace(tensors=padded))
    outs = {"c2": visual[0], "c3": visual[1], "c4": visual[2], "c5": visual[3], "hidden": lang["hidden"],
            "embedded": lang["embedded"]}
    probes = {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in outs.items()}
    loss = sum((outs[k] * probes[k]).sum() for k in outs)
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(loss, [padded] + list(params.values()), allow_unused=True)
    io = {"images": images, "ids": ids, "mask": mask}
    io.update({k: v.detach() for k, v in outs.items()})
    io.update({"probe." + k: v for k, v in probes.items()})
    io["grad.images"] = grads[0][:, :, :90, :150]
    param_grads = {}
    for (name, _), gr in zip(params.items(), grads[1:]):
        assert gr is not None, name
        if all_gradients or "i2t" in name:
            param_grads["grad.fusion_backbone." + name] = gr.float()  # float32: far below the tests' tolerance
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(state_dict_keys(model), OUT / f"fusion_{version}_weights.safetensors")
    save_file({k: v.contiguous() for k, v in io.items()}, OUT / f"fusion_{version}_io.safetensors")
    # A file of its own, so that no fixture passes 2 MiB.
    save_file({k: v.contiguous() for k, v in param_grads.items()}, OUT / f"fusion_{version}_grads.safetensors")
    print(version, {k: tuple(v.shape) for k, v in outs.items()}, "loss", float(loss))


if __name__ == "__main__":
    make("v2", 20, all_gradients=True)
    make("v3", 30, all_gradients=False)  # v3 differs by norm_i2t_i: its forward and the i2t gradients
