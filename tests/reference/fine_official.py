"""Imports pieces of the OFFICIAL FIBER fine-grained code (microsoft/FIBER,
fine_grained/maskrcnn_benchmark) for the detection fixtures, without building it.

Nothing of the official code is committed here: `load_official()` extracts the files below at run
time from a bare git mirror into a temporary package `maskrcnn_benchmark` and imports them. The
official package needs its compiled extension (`_C`) and imports the whole layer zoo from
`layers/__init__.py`; the fixtures only need pure-PyTorch parts, so those two are stand-ins:
- `maskrcnn_benchmark._C`: empty (the CUDA/C++ ops are never called on our path);
- `maskrcnn_benchmark.layers`: exposes the real sigmoid_focal_loss.py and iou_loss.py, and inert
  names for nms / ml_nms / smooth_l1_loss (imported by boxlist_ops.py and loss.py, not called);
- `maskrcnn_benchmark.modeling` and `.modeling.rpn` package inits are empty (the real ones import
  every head), `utils.shallow_contrastive_loss_helper` is empty (only star-imported).
"""
import ast
import atexit
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import types

import torch
import torchvision

DEFAULT_MIRROR = "/work/.mirror/microsoft+FIBER/repo"
REAL_FILES = [
    "structures/bounding_box.py", "structures/image_list.py", "structures/boxlist_ops.py",
    "modeling/box_coder.py", "modeling/matcher.py", "modeling/balanced_positive_negative_sampler.py",
    "modeling/utils.py", "modeling/rpn/anchor_generator.py", "modeling/rpn/loss.py",
    "modeling/rpn/inference.py",
    "layers/sigmoid_focal_loss.py", "layers/iou_loss.py", "utils/comm.py", "utils/amp.py",
]
STAND_INS = {
    "__init__.py": "",
    "_C.py": "",
    "structures/__init__.py": "",
    "modeling/__init__.py": "",
    "modeling/rpn/__init__.py": "",
    "utils/__init__.py": "",
    "utils/shallow_contrastive_loss_helper.py": "",
    "layers/__init__.py": (
        "from .sigmoid_focal_loss import SigmoidFocalLoss, TokenSigmoidFocalLoss\n"
        "from .iou_loss import IOULoss, IOUWHLoss\n"
        "def _not_here(*a, **k):\n"
        "    raise NotImplementedError('stand-in: the compiled op is not part of the fixtures')\n"
        "nms = ml_nms = smooth_l1_loss = _not_here\n"),
}


def git_head(mirror, rev="HEAD"):
    return subprocess.run(["git", "-C", mirror, "rev-parse", rev], check=True, capture_output=True,
                          text=True).stdout.strip()


def load_official(mirror=DEFAULT_MIRROR, rev="HEAD"):
    """Returns a namespace with the imported official modules and the commit they came from."""
    if not os.path.isdir(mirror):
        sys.exit(f"error: the microsoft/FIBER git mirror {mirror!r} does not exist")
    commit = git_head(mirror, rev)
    root = tempfile.mkdtemp(prefix="fiber_fine_official_")
    atexit.register(shutil.rmtree, root, True)
    pkg = os.path.join(root, "maskrcnn_benchmark")
    for rel, text in STAND_INS.items():
        os.makedirs(os.path.dirname(os.path.join(pkg, rel)), exist_ok=True)
        with open(os.path.join(pkg, rel), "w") as f:
            f.write(text)
    for rel in REAL_FILES:
        src = subprocess.run(["git", "-C", mirror, "show", f"{commit}:fine_grained/maskrcnn_benchmark/{rel}"],
                             check=True, capture_output=True).stdout
        os.makedirs(os.path.dirname(os.path.join(pkg, rel)), exist_ok=True)
        with open(os.path.join(pkg, rel), "wb") as f:
            f.write(src)
    sys.path.insert(0, root)
    ns = types.SimpleNamespace(commit=commit)
    for name, mod in [("bounding_box", "structures.bounding_box"), ("boxlist_ops", "structures.boxlist_ops"),
                      ("box_coder", "modeling.box_coder"), ("anchor_generator", "modeling.rpn.anchor_generator"),
                      ("loss", "modeling.rpn.loss"), ("focal", "layers.sigmoid_focal_loss"),
                      ("inference", "modeling.rpn.inference")]:
        setattr(ns, name, importlib.import_module(f"maskrcnn_benchmark.{mod}"))
    return ns


# The official ATSSPostProcessor's NMS: its CPU branch is broken (boxlist_ml_nms on CPU prints and
# fails), and the CUDA kernel is the one the official model runs; `ml_nms_cuda_semantics` restates
# that kernel
# (csrc/cuda/ml_nms.cu) on the CPU: boxes sorted by score (descending), a box suppresses later
# boxes of its label whose IoU (float32, +1 widths, devIoU's order of operations) is > threshold,
# and the kept indices come back sorted ascending (the kernel's final `.sort(0, false)`).
def ml_nms_cuda_semantics(boxes, scores, labels, thresh):
    order = torch.sort(scores, descending=True, stable=True)[1]
    b, lab = boxes[order].float(), labels[order]
    n = len(order)
    removed = [False] * n
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        for j in range(i + 1, n):
            if lab[i] != lab[j]:
                continue
            left, right = torch.maximum(b[i, 0], b[j, 0]), torch.minimum(b[i, 2], b[j, 2])
            top, bottom = torch.maximum(b[i, 1], b[j, 1]), torch.minimum(b[i, 3], b[j, 3])
            width = torch.clamp(right - left + 1, min=0.0)
            height = torch.clamp(bottom - top + 1, min=0.0)
            inter = width * height
            sa = (b[i, 2] - b[i, 0] + 1) * (b[i, 3] - b[i, 1] + 1)
            sb = (b[j, 2] - b[j, 0] + 1) * (b[j, 3] - b[j, 1] + 1)
            if inter / (sa + sb - inter) > thresh:
                removed[j] = True
    return torch.sort(order[torch.tensor(keep, dtype=torch.int64)])[0]


def boxlist_ml_nms_cuda_path(boxlist, nms_thresh, max_proposals=-1, score_field="scores", label_field="labels"):
    # boxlist_ml_nms (structures/boxlist_ops.py) as it runs on CUDA tensors.
    if nms_thresh <= 0:
        return boxlist
    mode = boxlist.mode
    boxlist = boxlist.convert("xyxy")
    keep = ml_nms_cuda_semantics(boxlist.bbox, boxlist.get_field(score_field), boxlist.get_field(label_field),
                                 nms_thresh)
    if max_proposals > 0:
        keep = keep[:max_proposals]
    return boxlist[keep].convert(mode)


def use_cuda_ml_nms(ns):
    """Makes the loaded official inference module call the CUDA ml_nms rule (on CPU tensors)."""
    ns.inference.boxlist_ml_nms = boxlist_ml_nms_cuda_path


def atss_loss(ns, coder):
    """The official ATSSLossComputation with FIBER's settings (TOPK 9, one anchor per location,
    REG_LOSS_WEIGHT 2, the dot-product token loss), built without the config system."""
    loss = ns.loss.ATSSLossComputation.__new__(ns.loss.ATSSLossComputation)
    torch.nn.Module.__init__(loss)
    loss.cfg = types.SimpleNamespace(MODEL=types.SimpleNamespace(
        ATSS=types.SimpleNamespace(TOPK=9, REG_LOSS_WEIGHT=2.0),
        RPN=types.SimpleNamespace(ASPECT_RATIOS=(1.0,), SCALES_PER_OCTAVE=1),
        DYHEAD=types.SimpleNamespace(FUSE_CONFIG=types.SimpleNamespace(
            USE_TOKEN_LOSS=False, USE_CONTRASTIVE_ALIGN_LOSS=False, USE_DOT_PRODUCT_TOKEN_LOSS=True,
            USE_SHALLOW_CONTRASTIVE_LOSS=False, USE_BACKBONE_SHALLOW_CONTRASTIVE_LOSS=False))))
    loss.box_coder = coder
    loss.cls_loss_func = ns.focal.SigmoidFocalLoss(2.0, 0.25)
    loss.token_loss_func = ns.focal.TokenSigmoidFocalLoss(0.25, 2.0)
    loss.centerness_loss_func = torch.nn.BCEWithLogitsLoss(reduction="sum")
    return loss


class ModulatedDeformConvCudaRead(torch.nn.Module):
    """layers/deform_conv.py's ModulatedDeformConv (same parameters), with the CUDA kernel's reads."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 deformable_groups=1, bias=True):
        super().__init__()
        assert groups == 1 and deformable_groups == 1 and dilation == 1
        self.stride, self.padding = stride, padding
        self.weight = torch.nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = torch.nn.Parameter(torch.zeros(out_channels))

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



def exec_official_defs(rel, names, scope, mirror=DEFAULT_MIRROR, replace=()):
    """Executes the top-level functions and classes `names` of the official file
    fine_grained/maskrcnn_benchmark/<rel> (from the mirror's HEAD) into `scope`, without the rest
    of the module (its imports pull in CUDA extensions, CLIP, fbnet, ...).

    `replace`: (old, new) pairs applied to the source first, each of which must occur exactly once:
    the official code writes some widths as literals (768, 512, 1024) that a tiny fixture changes."""
    src = subprocess.run(["git", "-C", mirror, "show", f"HEAD:fine_grained/maskrcnn_benchmark/{rel}"], check=True,
                         capture_output=True, text=True).stdout
    for old, new in replace:
        assert src.count(old) == 1, (rel, old, src.count(old))
        src = src.replace(old, new)
    found = [n for n in ast.parse(src).body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in names]
    assert sorted(n.name for n in found) == sorted(names), (rel, names)
    exec(compile(ast.Module(body=found, type_ignores=[]), rel, "exec"), scope)


def head_scope(deform_conv):
    """A scope holding the official FPN, LastLevelP6P7, DYReLU, Scale, permute_and_flatten and
    VLDyHead definitions, with ModulatedDeformConv = `deform_conv` and inert RobertaConfig /
    BertConfig (VLDyHead reads them only for its early fusion, which FIBER turns off)."""
    import math
    inert = types.SimpleNamespace(from_pretrained=lambda name: None)
    scope = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "math": math,
             "ModulatedDeformConv": deform_conv, "RobertaConfig": inert, "BertConfig": inert}
    exec_official_defs("modeling/backbone/fpn.py", ["FPN", "LastLevelP6P7", "LastLevelMaxPool"], scope)
    exec_official_defs("layers/dyrelu.py", ["_make_divisible", "h_sigmoid", "DYReLU"], scope)
    exec_official_defs("layers/misc.py", ["Scale"], scope)
    exec_official_defs("modeling/utils.py", ["permute_and_flatten"], scope)
    exec_official_defs("modeling/rpn/vldyhead.py", ["h_sigmoid", "Conv3x3Norm", "DyConv", "VLDyHead"], scope)
    return scope


def head_cfg(channels=256, convs=6, lang=768, classes=81, max_query_len=256):
    """The config VLDyHead reads, with FIBER's settings (FIBER-B's sizes by default)."""
    ns = types.SimpleNamespace
    return ns(MODEL=ns(
        LANGUAGE_BACKBONE=ns(MODEL_TYPE="roberta-fused-v2", MAX_QUERY_LEN=max_query_len, LANG_DIM=lang),
        DYHEAD=ns(NUM_CLASSES=classes, CHANNELS=channels, USE_GN=True, USE_NSYNCBN=False, USE_SYNCBN=False,
                  USE_DYRELU=True, USE_DYFUSE=True, USE_DFCONV=True, CONV_FUNC="", NUM_CONVS=convs, PRIOR_PROB=0.01,
                  LOG_SCALE=0.0,
                  FUSE_CONFIG=ns(EARLY_FUSE_ON=False, USE_TOKEN_LOSS=False, USE_CONTRASTIVE_ALIGN_LOSS=False,
                                 USE_DOT_PRODUCT_TOKEN_LOSS=True, MLM_LOSS=False, USE_FUSED_FEATURES_DOT_PRODUCT=False,
                                 USE_SHALLOW_CONTRASTIVE_LOSS=False, USE_BACKBONE_SHALLOW_CONTRASTIVE_LOSS=False,
                                 CLAMP_DOT_PRODUCT=True)),
        GROUP_NORM=ns(NUM_GROUPS=16),
        RPN=ns(ASPECT_RATIOS=(1.0,), SCALES_PER_OCTAVE=1, RETURN_FUSED_FEATURES=False),
        BACKBONE=ns(OUT_CHANNELS=channels)))


def randomize_head(fpn, head):
    """Random float32 weights that make every path of FPN and head matter: unit-scale convolutions,
    offsets of a few pixels, masks away from 0.5, GroupNorm affines away from (1, 0), a non-zero
    log_scale and language bias. Call before converting the modules to float64."""
    import math
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


def official_detections(ns, head_outputs, image_sizes, positive_map, detections_per_image=0):
    """The official ATSSPostProcessor (FIBER's settings, the CUDA ml_nms rule) on VLDyHead's outputs
    (its return tuple) for images of `image_sizes` [(w, h)] inside the padded batch; one BoxList per
    image. detections_per_image 0: no cap (fpn_post_nms_top_n)."""
    use_cuda_ml_nms(ns)
    _, box_reg, centerness, _, _, _, dot_logits, *_ = head_outputs
    dtype = box_reg[0].dtype
    grids = [tuple(t.shape[-2:]) for t in box_reg]
    anchors = ns.anchor_generator.AnchorGenerator(((64,), (128,), (256,), (512,), (1024,)), (1.0,),
                                                  (8, 16, 32, 64, 128), 0).grid_anchors(grids)
    BoxList = ns.bounding_box.BoxList
    post = ns.inference.ATSSPostProcessor(pre_nms_thresh=0.05, pre_nms_top_n=1000, nms_thresh=0.6,
                                          fpn_post_nms_top_n=detections_per_image, min_size=0, num_classes=81,
                                          box_coder=ns.box_coder.BoxCoder((10.0, 10.0, 5.0, 5.0)), score_agg="MEAN")
    with torch.no_grad():
        return post(list(box_reg), list(centerness),
                    [[BoxList(a.to(dtype), size, mode="xyxy") for a in anchors] for size in image_sizes],
                    box_cls=[torch.zeros(len(image_sizes), 80, h, w, dtype=dtype) for (h, w) in grids],
                    dot_product_logits=list(dot_logits), positive_map=positive_map)
