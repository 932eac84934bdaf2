"""Fixtures for tests/models/test_dyhead_parity.cpp: the OFFICIAL fine-grained FPN and VLDyHead
(microsoft/FIBER fine_grained/maskrcnn_benchmark) on a tiny configuration, in float64.

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_dyhead.py

The class definitions (FPN, LastLevelP6P7, LastLevelMaxPool from modeling/backbone/fpn.py;
h_sigmoid, Conv3x3Norm, DyConv, VLDyHead from modeling/rpn/vldyhead.py; DYReLU from
layers/dyrelu.py; Scale from layers/misc.py; permute_and_flatten from modeling/utils.py) are taken
from the mirror at run time and executed; nothing of them is committed. The modules' own imports
(transformers' BERT internals, CLIP, fbnet) are not needed for this path and are not loaded.

The official ModulatedDeformConv runs only on CUDA (its compiled kernel). Its stand-in here calls
torchvision.ops.deform_conv2d after reading the offsets and mask the way the CUDA kernel does:
image n's offsets are read as a contiguous [18, Ho, Wo] block starting at offset[n]'s first element
(offset is a view of the 27-channel conv output), and its mask likewise from mask[n]; torch.as_strided
reads exactly that memory. When the conv output is smaller than the level the offsets were computed
on (DyConv[0] on the coarser level), that is a prefix of the buffer, not a resized map.

Tiny configuration: FPN in (16, 24, 40) -> 32 channels; DyHead 32 channels, 2 DyConv blocks, GroupNorm
16 groups, DyReLU squeeze 8, text width 48, 5 cls_logits channels, dot-product logits clamped. Two
images: C3 [2, 16, 12, 20], C4 [2, 24, 6, 10], C5 [2, 40, 3, 5] (so P6 [2, 3], P7 [1, 2]: odd sizes);
text [2, 7, 48] with the second image's last 3 tokens padding (zero, as the official `embedded`).

Writes tests/data/fine/dyhead_weights.safetensors (keys fpn.* and head.* = the official module
state dicts) and dyhead_io.safetensors (c3..c5, text, p3..p7, box<l>, centerness<l>, logits<l>).
"""
import ast
import math
import pathlib
import subprocess
import types

import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file
from torch import nn

MIRROR = "/work/.mirror/microsoft+FIBER/repo"
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/data/fine"


def official_defs(rel, names, scope):
    src = subprocess.run(["git", "-C", MIRROR, "show", f"HEAD:fine_grained/maskrcnn_benchmark/{rel}"], check=True,
                         capture_output=True, text=True).stdout
    tree = ast.parse(src)
    found = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in names]
    assert sorted(n.name for n in found) == sorted(names), (rel, names)
    exec(compile(ast.Module(body=found, type_ignores=[]), rel, "exec"), scope)


class ModulatedDeformConvCudaRead(nn.Module):
    """layers/deform_conv.py's ModulatedDeformConv (same parameters), with the CUDA kernel's reads."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 deformable_groups=1, bias=True):
        super().__init__()
        assert groups == 1 and deformable_groups == 1 and dilation == 1
        self.stride, self.padding = stride, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, input, offset, mask):
        k = self.weight.shape[2]
        ho = (input.shape[2] + 2 * self.padding - k) // self.stride + 1
        wo = (input.shape[3] + 2 * self.padding - k) // self.stride + 1
        outs = []
        for n in range(input.shape[0]):
            off = torch.as_strided(offset[n], (2 * k * k, ho, wo), (ho * wo, wo, 1))
            msk = torch.as_strided(mask[n], (k * k, ho, wo), (ho * wo, wo, 1))
            outs.append(torchvision.ops.deform_conv2d(input[n:n + 1], off[None], self.weight, self.bias,
                                                      stride=self.stride, padding=self.padding, mask=msk[None]))
        return torch.cat(outs)


def ns(**kw):
    return types.SimpleNamespace(**kw)


class ConfigStub:
    @staticmethod
    def from_pretrained(name):
        return None


scope = {"torch": torch, "nn": nn, "F": F, "math": math, "ModulatedDeformConv": ModulatedDeformConvCudaRead,
         "RobertaConfig": ConfigStub, "BertConfig": ConfigStub}
official_defs("modeling/backbone/fpn.py", ["FPN", "LastLevelP6P7", "LastLevelMaxPool"], scope)
official_defs("layers/dyrelu.py", ["_make_divisible", "h_sigmoid", "DYReLU"], scope)
official_defs("layers/misc.py", ["Scale"], scope)
official_defs("modeling/utils.py", ["permute_and_flatten"], scope)
official_defs("modeling/rpn/vldyhead.py", ["h_sigmoid", "Conv3x3Norm", "DyConv", "VLDyHead"], scope)

cfg = ns(MODEL=ns(
    LANGUAGE_BACKBONE=ns(MODEL_TYPE="roberta-fused-v2", MAX_QUERY_LEN=7, LANG_DIM=48),
    DYHEAD=ns(NUM_CLASSES=6, CHANNELS=32, USE_GN=True, USE_NSYNCBN=False, USE_SYNCBN=False, USE_DYRELU=True,
              USE_DYFUSE=True, USE_DFCONV=True, CONV_FUNC="", NUM_CONVS=2, PRIOR_PROB=0.01, LOG_SCALE=0.0,
              FUSE_CONFIG=ns(EARLY_FUSE_ON=False, USE_TOKEN_LOSS=False, USE_CONTRASTIVE_ALIGN_LOSS=False,
                             USE_DOT_PRODUCT_TOKEN_LOSS=True, MLM_LOSS=False, USE_FUSED_FEATURES_DOT_PRODUCT=False,
                             USE_SHALLOW_CONTRASTIVE_LOSS=False, USE_BACKBONE_SHALLOW_CONTRASTIVE_LOSS=False,
                             CLAMP_DOT_PRODUCT=True)),
    GROUP_NORM=ns(NUM_GROUPS=16),
    RPN=ns(ASPECT_RATIOS=(1.0,), SCALES_PER_OCTAVE=1, RETURN_FUSED_FEATURES=False),
    BACKBONE=ns(OUT_CHANNELS=32)))

torch.manual_seed(20261206)
fpn = scope["FPN"]([0, 16, 24, 40], 32, conv_block=lambda i, o, k, s=1: nn.Conv2d(i, o, k, s, (k - 1) // 2),
                   top_blocks=scope["LastLevelP6P7"](32, 32))
head = scope["VLDyHead"](cfg)

# Random weights that make every path matter: unit-scale convolutions, offsets of a few pixels,
# masks away from 0.5, GroupNorm affines away from (1, 0), a non-zero log_scale and language bias.
with torch.no_grad():
    for name, p in list(fpn.named_parameters()) + list(head.named_parameters()):
        if name.endswith("offset.weight"):
            p.copy_(torch.randn_like(p) * 0.02)
        elif name.endswith("offset.bias"):
            p.copy_(torch.randn_like(p) * 1.5)
        elif ".bn." in name and name.endswith("weight"):
            p.copy_(1 + 0.2 * torch.randn_like(p))
        elif p.dim() >= 2:
            p.copy_(torch.randn_like(p) / math.sqrt(p[0].numel()))
        else:
            p.copy_(torch.randn_like(p) * 0.3)
    head.log_scale.fill_(0.4)
    head.bias0.fill_(-1.5)
fpn.double().eval()
head.double().eval()

# Weights and inputs are float32 values (exact in float64), so the float32 C++ model reads the same numbers.
c = [torch.randn(2, 16, 12, 20).double(), torch.randn(2, 24, 6, 10).double(), torch.randn(2, 40, 3, 5).double()]
text = torch.randn(2, 7, 48).double()
text[1, 4:] = 0  # padding tokens: embedded = hidden * mask
with torch.no_grad():
    p = fpn(c)
    lang = {"hidden": text, "embedded": text, "masks": (text.abs().sum(-1) > 0).long()}
    outs = head(list(p), lang, text)
_, bbox_reg, centerness, _, _, _, dot_logits, *_ = outs

OUT.mkdir(parents=True, exist_ok=True)
weights = {f"fpn.{k}": v.float().contiguous() for k, v in fpn.state_dict().items()}
weights.update({f"head.{k}": v.float().contiguous() for k, v in head.state_dict().items()})
save_file(weights, str(OUT / "dyhead_weights.safetensors"))
io = {"c3": c[0], "c4": c[1], "c5": c[2], "text": text}
for l in range(5):
    io[f"p{l + 3}"] = p[l]
    io[f"box{l}"] = bbox_reg[l]
    io[f"centerness{l}"] = centerness[l]
    io[f"logits{l}"] = dot_logits[l]
save_file({k: v.contiguous() for k, v in io.items()}, str(OUT / "dyhead_io.safetensors"))
print("levels", [tuple(t.shape[-2:]) for t in p])
print("logits range", min(float(t.min()) for t in dot_logits), max(float(t.max()) for t in dot_logits))
print("weights", len(weights), "tensors")
