"""Fixtures for tests/detection: anchors, the box coder, IoU and the ATSS targets, written by the
OFFICIAL fine-grained code (maskrcnn_benchmark from the microsoft/FIBER mirror, see
fine_official.py), float32 as the official model runs them.

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_detection.py

Files (tests/data/detection/*.npy):
  cell_<name>             generate_anchors(stride, sizes, ratios)            (float64)
  grid_anchors            AnchorGenerator(FIBER's sizes/strides).grid_anchors over `grids`, concatenated
  grids                   the five (h, w) feature-map sizes                   (int64)
  coder_gt, coder_anchors, coder_encoded   BoxCoder((10, 10, 5, 5)).encode
  coder_codes, coder_decoded               BoxCoder.decode (some dw, dh past the clamp)
  iou_a, iou_b, iou                        boxlist_iou
  atss<i>_gt, atss<i>_positive_map         image i's boxes and positive map [G, 256]
  atss<i>_labels, atss<i>_box_targets, atss<i>_token_targets   prepare_targets (labels = box index + 1, 0 unmatched)
  atss<i>_centerness      compute_centerness_targets on the positive anchors, in anchor order
"""
import pathlib
import types

import numpy as np
import torch

import fine_official

out_dir = pathlib.Path(__file__).resolve().parents[1] / "data" / "detection"
out_dir.mkdir(parents=True, exist_ok=True)
for old in out_dir.glob("*.npy"):
    old.unlink()


def save(name, t):
    np.save(out_dir / f"{name}.npy", t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t))


torch.manual_seed(20261205)
ns = fine_official.load_official()
BoxList = ns.bounding_box.BoxList

# ---- anchors ----------------------------------------------------------------------------------
cells = {
    "fiber_p3": (8, (64,), (1.0,)),
    "three_ratios": (16, (32, 64, 128), (0.5, 1.0, 2.0)),
    "half_even": (5, (10, 25), (4.0, 0.25)),  # sqrt(25 / 4) = 2.5 rounds to 2 (numpy rounds half to even)
    "odd": (7, (20.0, 45.5), (4.0, 0.7)),      # sqrt(49 / 4) = 3.5 rounds to 4
}
for name, (stride, sizes, ratios) in cells.items():
    save(f"cell_{name}", ns.anchor_generator.generate_anchors(stride, sizes, ratios))

strides = (8, 16, 32, 64, 128)
sizes = ((64,), (128,), (256,), (512,), (1024,))
gen = ns.anchor_generator.AnchorGenerator(sizes, (1.0,), strides, 0)
grids = [(12, 15), (6, 8), (3, 4), (2, 2), (1, 1)]  # a 96 x 120 padded image
save("grids", np.array(grids, dtype=np.int64))
level_anchors = gen.grid_anchors(grids)
anchors = torch.cat(level_anchors, 0)
save("grid_anchors", anchors)

# ---- box coder, IoU -----------------------------------------------------------------------------
coder = ns.box_coder.BoxCoder((10.0, 10.0, 5.0, 5.0))


def random_boxes(n, w, h, min_size=2.0, max_size=None):
    max_size = max_size or min(w, h)
    wh = torch.rand(n, 2) * (max_size - min_size) + min_size
    x1 = torch.rand(n) * (w - wh[:, 0])
    y1 = torch.rand(n) * (h - wh[:, 1])
    return torch.stack([x1, y1, x1 + wh[:, 0], y1 + wh[:, 1]], 1)


ca = random_boxes(40, 200, 150)
cg = random_boxes(40, 200, 150)
save("coder_anchors", ca)
save("coder_gt", cg)
save("coder_encoded", coder.encode(cg, ca))
codes = torch.randn(40, 4) * torch.tensor([1.0, 1.0, 5.0, 5.0])
codes[:6, 2:] = torch.tensor([[25.0, 30.0], [21.0, -30.0], [40.0, 0.0], [0.0, 100.0], [20.6, 20.7], [-50.0, 50.0]])
save("coder_codes", codes)
save("coder_decoded", coder.decode(codes, ca))

ia = random_boxes(17, 100, 80)
ib = torch.cat([random_boxes(12, 100, 80), ia[:2], torch.tensor([[10.0, 10.0, 10.0, 10.0], [50.0, 5.0, 49.0, 6.0]])])
save("iou_a", ia)
save("iou_b", ib)
save("iou", ns.boxlist_ops.boxlist_iou(BoxList(ia, (100, 80)), BoxList(ib, (100, 80))))

# ---- ATSS targets -------------------------------------------------------------------------------
loss = fine_official.atss_loss(ns, coder)
W, H = 120, 96  # the padded batch size; boxes lie in the images
images = [
    torch.cat([random_boxes(4, 110, 90, 6, 80), torch.tensor([[3.3, 4.1, 9.7, 8.9], [1.2, 2.5, 118.4, 93.7]])]),
    random_boxes(1, 70, 60, 20, 50),
    random_boxes(7, 120, 96, 4, 40),
]
targets, maps = [], []
for boxes in images:
    t = BoxList(boxes, (W, H), mode="xyxy")
    t.add_field("labels", torch.arange(1, len(boxes) + 1))
    targets.append(t)
    pm = (torch.rand(len(boxes), 256) < 0.02).float()
    pm[:, 0] = 0
    for j in range(len(boxes)):  # every box covers at least one token
        pm[j, 1 + 3 * j: 3 + 3 * j] = 1
    maps.append(pm)
anchor_lists = [[BoxList(a, (W, H), mode="xyxy") for a in level_anchors] for _ in images]
cls_labels, reg_targets, token_labels, *_ = loss.prepare_targets(targets, anchor_lists, None, torch.cat(maps), None)
for i, boxes in enumerate(images):
    save(f"atss{i}_gt", boxes)
    save(f"atss{i}_positive_map", maps[i])
    save(f"atss{i}_labels", cls_labels[i].to(torch.int64))
    save(f"atss{i}_box_targets", reg_targets[i])
    save(f"atss{i}_token_targets", token_labels[i])
    pos = cls_labels[i] > 0
    save(f"atss{i}_centerness", loss.compute_centerness_targets(reg_targets[i][pos], anchors[pos]))
    print(f"image {i}: {len(boxes)} boxes, {int(pos.sum())} positive anchors of {len(anchors)}")
print("wrote", out_dir, "from microsoft/FIBER", ns.commit)

# ---- losses: the official ATSSLossComputation.__call__ (dot-product token loss) -----------------
# Images 0 and 1 of the ATSS section, random head outputs; gradients of the three official losses
# (token, box x REG_LOSS_WEIGHT, centerness) with respect to the flattened head outputs.
N, A, L = 2, anchors.shape[0], 256
logits = (torch.randn(N, A, L) * 2).requires_grad_(True)
box_reg = (torch.randn(N, A, 4) * 0.5).requires_grad_(True)
ctr = torch.randn(N, A).requires_grad_(True)
text_mask = torch.zeros(N, L)
text_mask[0, :20] = 1
text_mask[1, :12] = 1
per_level_box, per_level_ctr, per_level_logits, per_level_cls = [], [], [], []
start = 0
for (h, w) in grids:
    end = start + h * w
    per_level_box.append(box_reg[:, start:end].reshape(N, h, w, 4).permute(0, 3, 1, 2))
    per_level_ctr.append(ctr[:, start:end].reshape(N, h, w).unsqueeze(1))
    per_level_logits.append(logits[:, start:end])
    per_level_cls.append(torch.zeros(N, 1, h, w))
    start = end
outs = loss(per_level_cls, per_level_box, per_level_ctr, targets[:2], anchor_lists[:2], captions=None,
            positive_map=torch.cat(maps[:2]), dot_product_logits=per_level_logits, text_masks=text_mask)
token_loss, box_loss, centerness_loss = outs[5], outs[1], outs[2]
save("loss_logits", logits)
save("loss_box_regression", box_reg)
save("loss_centerness", ctr)
save("loss_text_mask", text_mask)
save("loss_values", torch.stack([token_loss, box_loss, centerness_loss]))
# Each loss reaches only its own head output (checked here, not stored).
for name, value, key, own in [("token", token_loss, "logits", 0), ("box", box_loss, "box_regression", 1),
                              ("centerness", centerness_loss, "centerness", 2)]:
    grads = torch.autograd.grad(value, [logits, box_reg, ctr], allow_unused=True, retain_graph=True)
    for i, g in enumerate(grads):
        if i != own:
            assert g is None or not g.any(), name
    save(f"loss_{name}_grad_{key}", grads[own])
print("losses: token %.6f box %.6f centerness %.6f" % (token_loss.item(), box_loss.item(), centerness_loss.item()))

# ---- post-processing: the official ATSSPostProcessor (dot-product logits, SCORE_AGG MEAN) -------
# Its CPU NMS branch is broken; fine_official.use_cuda_ml_nms puts the CUDA kernel's rule in.
fine_official.use_cuda_ml_nms(ns)
post_grids = [(10, 12), (5, 6), (3, 3)]  # strides 8, 16, 32 over a padded 96 x 80 (w x h) batch
post_anchors = ns.anchor_generator.AnchorGenerator(sizes[:3], (1.0,), strides[:3], 0).grid_anchors(post_grids)
IMG_W, IMG_H = 90, 77  # the image inside the padded batch
save("post_grids", np.array(post_grids, dtype=np.int64))
save("post_image_size", np.array([IMG_W, IMG_H], dtype=np.int64))
phrases = [[1, 2], [4], [6, 7, 8], [10], [12, 13]]
save("post_phrase_tokens", np.array([t for p in phrases for t in p], dtype=np.int64))
save("post_phrase_lengths", np.array([len(p) for p in phrases], dtype=np.int64))
positive_map = {j + 1: p for j, p in enumerate(phrases)}
settings = {  # name: (threshold, pre-NMS top n, NMS threshold, detections per image)
    "default": (0.05, 1000, 0.6, 100),
    "tight": (0.3, 7, 0.5, 10),
    "loose_nms": (0.05, 1000, 0.9, 12),
    "uncapped": (0.05, 1000, 0.6, 0),  # 0: no cap (`if n > fpn_post_nms_top_n > 0`)
}
for case, seed in [("a", 1), ("b", 2)]:
    g = torch.Generator().manual_seed(seed)
    box_regression, centerness, dot_logits, cls = [], [], [], []
    for (h, w) in post_grids:
        box_regression.append(torch.randn(1, 4, h, w, generator=g) * torch.tensor([4.0, 4.0, 2.0, 2.0]).view(1, 4, 1, 1))
        centerness.append(torch.randn(1, 1, h, w, generator=g) * 2)
        dot_logits.append(torch.randn(1, h * w, 256, generator=g) * 2 - 1)
        cls.append(torch.zeros(1, 80, h, w))  # cls_logits: only its width (80 phrases) matters
    for lv in range(len(post_grids)):
        save(f"post_{case}_box_regression{lv}", box_regression[lv][0])
        save(f"post_{case}_centerness{lv}", centerness[lv][0])
        save(f"post_{case}_logits{lv}", dot_logits[lv][0])
    for name, (th, top_n, nms_th, per_img) in settings.items():
        post = ns.inference.ATSSPostProcessor(pre_nms_thresh=th, pre_nms_top_n=top_n, nms_thresh=nms_th,
                                              fpn_post_nms_top_n=per_img, min_size=0, num_classes=81,
                                              box_coder=coder, score_agg="MEAN")
        anchor_boxlists = [[BoxList(a, (IMG_W, IMG_H), mode="xyxy") for a in post_anchors]]
        with torch.no_grad():
            result = post(box_regression, centerness, anchor_boxlists, box_cls=cls, dot_product_logits=dot_logits,
                          positive_map=positive_map)[0]
        save(f"post_{case}_{name}_boxes", result.bbox)
        save(f"post_{case}_{name}_scores", result.get_field("scores"))
        save(f"post_{case}_{name}_labels", result.get_field("labels").to(torch.int64))
        print(f"post-processing {case}/{name}: {len(result)} detections")
