"""A check to run by hand (not part of the test suite): FIBER-B fine-grained at full size, the
OFFICIAL modules against `fiber ground`.

    /root/.cache/fiber-ref-venv/bin/python tests/reference/check_full_size_fine.py build/tools/fiber [--v3]

1. Builds the official model at the released configuration (Swin-B window 12, RoBERTa-base widths,
   FPN 256, VLDyHead 256 x 6) from the mirror's code (make_fine_keys.official_modules; the CUDA
   deformable conv replaced by torchvision's with the kernel's reads), random weights (PyTorch's
   default initialisation, the fusion gates alpha_i2t / alpha_t2i at 0.5 so that fusion matters,
   the head as fine_official.randomize_head), and saves it as the maskrcnn_benchmark trainer does:
   torch.save({"model": {"module." + key: tensor}}) with every buffer of the state dict.
2. Runs the official pipeline on a generated 640 x 480 image: the predictor's transform (PIL
   bilinear resize to shorter side 800, BGR 0-255, PIXEL_MEAN / PIXEL_STD), padding to 32, the
   prompt tokenized to 256 tokens (the test tokenizer of tests/data/text, on both sides), phrases
   mapped by the official create_positive_map, FusionSwinTransformer -> FPN -> VLDyHead ->
   ATSSPostProcessor (CUDA NMS rule), boxes resized to the image (BoxList.resize).
3. Runs `fiber ground --json` on the same files and compares: the same detections, labels equal,
   scores and boxes within the stated tolerances.
"""
import argparse
import collections
import json
import pathlib
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch
from PIL import Image
from transformers import RobertaTokenizerFast

import fine_official
import make_fine_keys
import make_fusion_backbone as mfb

ROOT = mfb.ROOT
TEXT = "a red square left of a blue circle"
PHRASES = ["red square", "blue circle"]
MEAN, STD = [103.53, 116.28, 123.675], [57.375, 57.12, 58.395]


def build(version):
    swin, text, fpn, head = make_fine_keys.official_modules(version, full=True,
                                                           deform_conv=fine_official.ModulatedDeformConvCudaRead)
    torch.manual_seed(7)
    with torch.no_grad():
        for name, p in list(swin.named_parameters()) + list(text.named_parameters()):
            if "alpha" in name:
                p.fill_(0.5)
        fine_official.randomize_head(fpn, head)
    backbone = torch.nn.Module()
    backbone.body, backbone.fpn = swin, fpn
    scope = mfb.official_scope(version, tiny=False)
    encoder = scope["RobertaFusedEncoder"]
    body = encoder.__new__(encoder)
    torch.nn.Module.__init__(body)
    body.cfg = types.SimpleNamespace(MODEL=types.SimpleNamespace(DYHEAD=types.SimpleNamespace(
        FUSE_CONFIG=types.SimpleNamespace(USE_DOT_PRODUCT_TOKEN_LOSS=True))))
    body.model = text
    language = torch.nn.Module()
    language.body = body
    fusion = scope["FusionSwinTransformer"](backbone, language).eval()
    head.eval()
    return fusion, head


def save_pth(fusion, head, path):
    state = collections.OrderedDict()
    for k, v in fusion.state_dict().items():
        state["module.fusion_backbone." + k] = v
    for k, v in head.state_dict().items():
        state["module.rpn.head." + k] = v
    off = make_fine_keys.official
    gen = off.anchor_generator.AnchorGenerator(((64,), (128,), (256,), (512,), (1024,)), (1.0,), (8, 16, 32, 64, 128), 0)
    for k, v in gen.state_dict().items():
        state["module.rpn.anchor_generator." + k] = v
    torch.save({"model": state, "iteration": 0}, path)


def make_image(path):
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:480, 0:640]
    rgb = np.stack([(x * 0.4) % 256, (y * 0.5) % 256, ((x + y) * 0.3) % 256], -1)
    rgb[100:220, 80:200] = [220, 30, 30]
    yy, xx = np.ogrid[0:480, 0:640]
    rgb[(yy - 300) ** 2 + (xx - 450) ** 2 < 70 ** 2] = [30, 40, 220]
    rgb = np.clip(rgb + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return rgb


def official(fusion, head, rgb, tok):
    im = Image.fromarray(rgb)
    w, h = im.size
    ow, oh = (int(800 * w / h), 800) if w >= h else (800, int(800 * h / w))
    resized = torch.from_numpy(np.asarray(im.resize((ow, oh), Image.BILINEAR))).permute(2, 0, 1).float() / 255
    x = resized[[2, 1, 0]] * 255
    x = (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    ph, pw = (oh + 31) // 32 * 32, (ow + 31) // 32 * 32
    padded = torch.zeros(1, 3, ph, pw)
    padded[0, :, :oh, :ow] = x
    tokenized = tok([TEXT], max_length=256, padding="max_length", truncation=True, return_tensors="pt")
    scope = {"torch": torch}
    fine_official.exec_official_defs("engine/predictor_FIBER.py",
                                     ["create_positive_map", "create_positive_map_label_to_token_from_positive_map"],
                                     scope)
    spans = [[(TEXT.index(p), TEXT.index(p) + len(p))] for p in PHRASES]
    positive = scope["create_positive_map_label_to_token_from_positive_map"](
        scope["create_positive_map"](tokenized, spans), plus=1)
    with torch.no_grad():
        visual, lang, _ = fusion({"input_ids": tokenized["input_ids"], "attention_mask": tokenized["attention_mask"]},
                                 types.SimpleNamespace(tensors=padded))
        outs = head(list(visual), lang, lang["embedded"])
    det = fine_official.official_detections(make_fine_keys.official, outs, [(ow, oh)], positive,
                                            detections_per_image=100)[0]
    det = det.resize((w, h))
    order = torch.argsort(det.get_field("scores"), descending=True, stable=True)
    return (det.bbox[order].tolist(), det.get_field("scores")[order].tolist(), det.get_field("labels")[order].tolist(),
            positive)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fiber", help="the fiber binary (build/tools/fiber)")
    ap.add_argument("--v3", action="store_true")
    a = ap.parse_args()
    version = "v3" if a.v3 else "v2"
    tok = RobertaTokenizerFast(str(ROOT / "tests/data/text/vocab.json"), str(ROOT / "tests/data/text/merges.txt"))
    with tempfile.TemporaryDirectory() as d:
        d = pathlib.Path(d)
        fusion, head = build(version)
        save_pth(fusion, head, d / "model.pth")
        rgb = make_image(d / "image.png")
        boxes, scores, labels, positive = official(fusion, head, rgb, tok)
        cmd = [a.fiber, "ground", "--weights", str(d / "model.pth"), "--vocab", str(ROOT / "tests/data/text/vocab.json"),
               "--merges", str(ROOT / "tests/data/text/merges.txt"), "--image", str(d / "image.png"), "--text", TEXT,
               "--json"]
        for p in PHRASES:
            cmd += ["--phrase", p]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit("fiber ground failed: " + out.stderr)
        ours = json.loads(out.stdout.strip().splitlines()[-1])["detections"]
    print(f"FIBER-B fine {version}: phrases {positive}; official {len(labels)} detections, fiber {len(ours)}")
    n = min(len(ours), len(labels))
    worst_score = max((abs(ours[i]["score"] - scores[i]) / max(scores[i], 1e-12) for i in range(n)), default=0)
    worst_box = max((abs(ours[i]["box"][c] - boxes[i][c]) for i in range(n) for c in range(4)), default=0)
    same_labels = all(ours[i]["label"] == labels[i] for i in range(n))
    print(f"labels equal: {same_labels}; score relative error max {worst_score:.2e}; box error max {worst_box:.2e} px")
    for i in range(min(5, n)):
        print(f"  {labels[i]} {scores[i]:.6f} {[round(v, 3) for v in boxes[i]]}  |  {ours[i]['label']} "
              f"{ours[i]['score']:.6f} {[round(v, 3) for v in ours[i]['box']]}")
    ok = len(ours) == len(labels) and same_labels and worst_score <= 1e-4 and worst_box <= 1e-2
    print("PASS" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
