"""Fixture for tests/fine/test_fiber_fine.cpp: the whole OFFICIAL fine-grained model, end to end, on
the tiny configuration (FiberTinyFine), in float64: FusionSwinTransformer (v2, the backbone of
make_fusion_backbone.py with the same seed, so its weights are fusion_v2_weights.safetensors) with
the official FPN as backbone.fpn, then VLDyHead on the FPN levels and the aggregated text, then the
official ATSSPostProcessor (its NMS the CUDA kernel's rule, fine_official.use_cuda_ml_nms).

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_fine_end_to_end.py

Inputs: the two 90 x 150 images and the token ids of make_fusion_backbone.py (padded to 96 x 160
inside); phrases {1: tokens 1-2, 2: token 3, 3: tokens 4-5}; image sizes (150, 90) and (130, 70)
for the post-processor (it clips to them). No cap on detections (see make_dyhead.py).

Writes tests/data/fine/end_to_end_weights.safetensors (fusion_backbone.backbone.fpn.* and rpn.head.*,
float32) and end_to_end_io.safetensors (p3..p7, logits<l>, det<i>_boxes/_scores/_labels).
"""
import types

import torch
from safetensors.torch import save_file
from torch import nn

import fine_official
import make_fine_keys
import make_fusion_backbone as mfb

CHANNELS = 16


def main():
    model = mfb.build("v2", 20)  # the same weights as fusion_v2_weights.safetensors
    scope = fine_official.head_scope(fine_official.ModulatedDeformConvCudaRead)
    torch.manual_seed(20261207)
    fpn = scope["FPN"]([0, 16, 32, 64], CHANNELS, conv_block=lambda i, o, k, s=1: nn.Conv2d(i, o, k, s, (k - 1) // 2),
                       top_blocks=scope["LastLevelP6P7"](CHANNELS, CHANNELS))
    head = scope["VLDyHead"](fine_official.head_cfg(channels=CHANNELS, convs=1, lang=mfb.TEXT, classes=6))
    fine_official.randomize_head(fpn, head)
    fpn.double().eval()
    head.double().eval()
    model.backbone.fpn = fpn

    g = torch.Generator().manual_seed(21)  # make_fusion_backbone.make("v2", 20)'s inputs
    images = torch.randn(2, 3, 90, 150, generator=g, dtype=torch.float64)
    ids = torch.randint(3, 1000, (2, 9), generator=g)
    ids[:, 0], ids[0, 8], ids[1, 5] = 0, 2, 2
    ids[1, 6:] = 1
    mask = (ids != 1).long()
    padded = torch.nn.functional.pad(images, (0, 10, 0, 6))
    with torch.no_grad():
        visual, lang, _ = model({"input_ids": ids, "attention_mask": mask}, types.SimpleNamespace(tensors=padded))
        outs = head(list(visual), lang, lang["embedded"])
    dot_logits = outs[6]
    image_sizes = [(150, 90), (130, 70)]
    detections = fine_official.official_detections(make_fine_keys.official, outs, image_sizes,
                                                   {1: [1, 2], 2: [3], 3: [4, 5]})

    weights = {f"fusion_backbone.backbone.fpn.{k}": v.float().contiguous() for k, v in fpn.state_dict().items()}
    weights.update({f"rpn.head.{k}": v.float().contiguous() for k, v in head.state_dict().items()})
    save_file(weights, str(mfb.OUT / "end_to_end_weights.safetensors"))
    io = {}
    for l in range(5):
        io[f"p{l + 3}"] = visual[l]
        io[f"logits{l}"] = dot_logits[l]
    for i in range(2):
        io[f"image_size{i}"] = torch.tensor(image_sizes[i], dtype=torch.int64)
        io[f"det{i}_boxes"] = detections[i].bbox
        io[f"det{i}_scores"] = detections[i].get_field("scores")
        io[f"det{i}_labels"] = detections[i].get_field("labels").to(torch.int64)
    save_file({k: v.contiguous() for k, v in io.items()}, str(mfb.OUT / "end_to_end_io.safetensors"))
    print("levels", [tuple(t.shape[-2:]) for t in visual], "detections", [len(d) for d in detections], "weights", len(weights))


if __name__ == "__main__":
    main()
