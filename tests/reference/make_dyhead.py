"""Fixtures for tests/models/test_dyhead_parity.cpp: the OFFICIAL fine-grained FPN and VLDyHead
(microsoft/FIBER fine_grained/maskrcnn_benchmark) on a tiny configuration, in float64.

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_dyhead.py

The class definitions (FPN, LastLevelP6P7, LastLevelMaxPool from modeling/backbone/fpn.py;
h_sigmoid, Conv3x3Norm, DyConv, VLDyHead from modeling/rpn/vldyhead.py; DYReLU from
layers/dyrelu.py; Scale from layers/misc.py; permute_and_flatten from modeling/utils.py) are taken
from the mirror at run time and executed; nothing of them is committed. The modules' own imports
(transformers' BERT internals, CLIP, fbnet) are not needed for this path and are not loaded.

The official ModulatedDeformConv runs only on CUDA (its compiled kernel). Its stand-in
(fine_official.ModulatedDeformConvCudaRead) calls
torchvision.ops.deform_conv2d after reading the offsets and mask the way the CUDA kernel does:
image n's offsets are read as a contiguous [18, Ho, Wo] block starting at offset[n]'s first element
(offset is a view of the 27-channel conv output), and its mask likewise from mask[n]; torch.as_strided
reads exactly that memory. When the conv output is smaller than the level the offsets were computed
on (DyConv[0] on the coarser level), that is a prefix of the buffer, not a resized map.

Tiny configuration: FPN in (16, 24, 40) -> 32 channels; DyHead 32 channels, 2 DyConv blocks, GroupNorm
16 groups, DyReLU squeeze 8, text width 48, 5 cls_logits channels, dot-product logits clamped. Two
images: C3 [2, 16, 12, 20], C4 [2, 24, 6, 10], C5 [2, 40, 3, 5] (so P6 [2, 3], P7 [1, 2]: odd sizes);
text [2, 7, 48] with the second image's last 3 tokens padding (zero, as the official `embedded`).

Then the OFFICIAL ATSS loss (fine_official.atss_loss) on these outputs for given boxes, with the
gradients of its total with respect to C3 and some weights, and the OFFICIAL ATSSPostProcessor's
detections (its NMS the CUDA kernel's rule, fine_official.use_cuda_ml_nms).

Writes tests/data/fine/dyhead_weights.safetensors (keys fpn.* and head.* = the official module
state dicts) and dyhead_io.safetensors (c3..c5, text, p3..p7, box<l>, centerness<l>, logits<l>; gt<i>,
positive_map<i>, text_mask, losses [token, box, centerness], grad.<name>; image_size<i>,
det<i>_boxes/_scores/_labels for phrases {1: tokens 1-2, 2: token 3, 3: tokens 4-5}).
"""
import pathlib

import torch
from safetensors.torch import save_file
from torch import nn

import fine_official

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/data/fine"


scope = fine_official.head_scope(fine_official.ModulatedDeformConvCudaRead)
cfg = fine_official.head_cfg(channels=32, convs=2, lang=48, classes=6, max_query_len=7)

torch.manual_seed(20261206)
fpn = scope["FPN"]([0, 16, 24, 40], 32, conv_block=lambda i, o, k, s=1: nn.Conv2d(i, o, k, s, (k - 1) // 2),
                   top_blocks=scope["LastLevelP6P7"](32, 32))
head = scope["VLDyHead"](cfg)

fine_official.randomize_head(fpn, head)
fpn.double().eval()
head.double().eval()

# Weights and inputs are float32 values (exact in float64), so the float32 C++ model reads the same numbers.
c = [torch.randn(2, 16, 12, 20).double(), torch.randn(2, 24, 6, 10).double(), torch.randn(2, 40, 3, 5).double()]
text = torch.randn(2, 7, 48).double()
text[1, 4:] = 0  # padding tokens: embedded = hidden * mask
c[0].requires_grad_(True)
p = fpn(c)
text_mask = (text.abs().sum(-1) > 0).double()
lang = {"hidden": text, "embedded": text, "masks": text_mask.long()}
outs = head(list(p), lang, text)
_, bbox_reg, centerness, _, _, _, dot_logits, *_ = outs

# ---- the official ATSS loss and post-processing on these outputs --------------------------------
# (fine_official loads loss.py, inference.py, anchor_generator.py, box_coder.py and bounding_box.py
# from the mirror; the post-processor's NMS is the CUDA kernel's rule, see fine_official.)
off = fine_official.load_official()
fine_official.use_cuda_ml_nms(off)
BoxList = off.bounding_box.BoxList
coder = off.box_coder.BoxCoder((10.0, 10.0, 5.0, 5.0))
grids = [tuple(t.shape[-2:]) for t in p]
level_anchors = off.anchor_generator.AnchorGenerator(((64,), (128,), (256,), (512,), (1024,)), (1.0,),
                                                     (8, 16, 32, 64, 128), 0).grid_anchors(grids)
level_anchors = [a.double() for a in level_anchors]
PAD_W, PAD_H = 160, 96
image_sizes = [(150, 90), (160, 70)]  # (w, h) inside the padded batch
# Coordinates off the anchor grid: a box centre equidistant from two anchor centres makes the
# official top-k by distance pick among ties in an unspecified order.
gt = [torch.tensor([[10.3, 12.1, 60.6, 70.2], [80.7, 5.2, 148.9, 40.4], [30.2, 50.3, 41.9, 61.6]], dtype=torch.float64),
      torch.tensor([[0.4, 0.3, 158.1, 68.7], [100.6, 20.1, 130.3, 45.8]], dtype=torch.float64)]
maps = [torch.tensor([[0, 1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1, 0]], dtype=torch.float64),
        torch.tensor([[0, 1, 0, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0, 0]], dtype=torch.float64)]
targets = []
for boxes in gt:
    t = BoxList(boxes, (PAD_W, PAD_H), mode="xyxy")
    t.add_field("labels", torch.arange(1, len(boxes) + 1))
    targets.append(t)
anchor_lists = [[BoxList(a, (PAD_W, PAD_H), mode="xyxy") for a in level_anchors] for _ in gt]
loss = fine_official.atss_loss(off, coder)
cls = [torch.zeros(2, 1, h, w, dtype=torch.float64) for (h, w) in grids]
torch.set_default_dtype(torch.float64)  # the loss makes its own float tensors (unmatched labels): float64 too
loss_out = loss(cls, list(bbox_reg), list(centerness), targets, anchor_lists, captions=None,
                positive_map=torch.cat(maps), dot_product_logits=list(dot_logits), text_masks=text_mask)
torch.set_default_dtype(torch.float32)
token_loss, box_loss, centerness_loss = loss_out[5], loss_out[1], loss_out[2]
total = token_loss + box_loss + centerness_loss
grad_of = {"c3": c[0], "head.dot_product_projection_text.weight": head.dot_product_projection_text.weight,
           "head.dyhead_tower.0.offset.weight": head.dyhead_tower[0].offset.weight,
           "head.dyhead_tower.1.DyConv.0.conv.weight": head.dyhead_tower[1].DyConv[0].conv.weight,
           "head.log_scale": head.log_scale, "fpn.fpn_inner2.weight": fpn.fpn_inner2.weight}
grads = dict(zip(grad_of, torch.autograd.grad(total, list(grad_of.values()))))

# No cap on detections per image: in float64 the official cap compares against a kthvalue taken in
# float32 (`.float()`), which can drop the 100th box; the cap is covered by tests/detection.
post = off.inference.ATSSPostProcessor(pre_nms_thresh=0.05, pre_nms_top_n=1000, nms_thresh=0.6, fpn_post_nms_top_n=0,
                                       min_size=0, num_classes=81, box_coder=coder, score_agg="MEAN")
phrases = {1: [1, 2], 2: [3], 3: [4, 5]}
with torch.no_grad():
    detections = post(list(bbox_reg), list(centerness),
                      [[BoxList(a, size, mode="xyxy") for a in level_anchors] for size in image_sizes],
                      box_cls=[torch.zeros(2, 80, h, w, dtype=torch.float64) for (h, w) in grids],
                      dot_product_logits=list(dot_logits), positive_map=phrases)
c[0] = c[0].detach()
p = [t.detach() for t in p]
bbox_reg, centerness, dot_logits = ([t.detach() for t in ts] for ts in (bbox_reg, centerness, dot_logits))

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
for i in range(2):
    io[f"gt{i}"] = gt[i]
    io[f"positive_map{i}"] = maps[i]
    io[f"image_size{i}"] = torch.tensor(image_sizes[i], dtype=torch.int64)
    io[f"det{i}_boxes"] = detections[i].bbox
    io[f"det{i}_scores"] = detections[i].get_field("scores")
    io[f"det{i}_labels"] = detections[i].get_field("labels").to(torch.int64)
io["text_mask"] = text_mask
io["losses"] = torch.stack([token_loss, box_loss, centerness_loss]).detach()
for k, g in grads.items():
    io[f"grad.{k}"] = g
save_file({k: v.contiguous() for k, v in io.items()}, str(OUT / "dyhead_io.safetensors"))
print("losses: token %.6f box %.6f centerness %.6f" % tuple(io["losses"].tolist()))
print("detections", [len(d) for d in detections])
print("levels", [tuple(t.shape[-2:]) for t in p])
print("logits range", min(float(t.min()) for t in dot_logits), max(float(t.max()) for t in dot_logits))
print("weights", len(weights), "tensors")
