"""Fixture for tests/fine/test_fine_training.cpp: training batches as the OFFICIAL fine-grained data
pipeline makes them, from grounding data in the MDETR form (a caption per image, tokens_positive
per box).

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_fine_batches.py

What runs is the official code, taken at run time from the microsoft/FIBER mirror (nothing of it
is committed): ModulatedDataset.__getitem__ with ConvertCocoPolysToMask and create_positive_map
(data/datasets/modulated_coco.py), has_valid_annotation (data/datasets/coco.py), the training
transforms as build_transforms composes them (data/transforms/transforms.py: Resize,
RandomHorizontalFlip, ToTensor, Normalize with the default TO_BGR255 and FIBER's PIXEL_MEAN/STD),
BoxList (structures/bounding_box.py) and BatchCollator with to_image_list (data/collate_batch.py,
structures/image_list.py; SIZE_DIVISIBILITY 32). torchvision's CocoDetection, its base class, reads
the annotations through pycocotools.coco.COCO, which the pinned environment does not have: a
stand-in below indexes the JSON the same way (imgs, getAnnIds, loadAnns, loadImgs). The text is
tokenized by transformers' RobertaTokenizerFast on the shapes world's vocabulary (committed beside
the fixture; the C++ test checks it is what the library writes), padded to the tiny model's
MAX_QUERY_LEN of 32 as the official language backbone pads its input.

The data set (written here, committed: batches/grounding.json, a.png 50x37, b.png 31x44) has a
box with fractional corners, one reaching past the image (clamped), one wholly outside and one
thinner than a pixel (both dropped with their spans), a span that starts on a space (the
char_to_token fallback), a box with two spans, a crowd box (left out), and an image without a box
over 1 pixel (left out by has_valid_annotation).

Writes tests/data/fine/batches/batches.safetensors, for each run r (0: shorter side 64, longer at
most 100, no flip; 1: the same flipped; 2: shorter side 80, where the longer side's limit acts):
  r<r>.image<i>  [3, H, W] the collated image of data-set image i (padded to the batch, BGR 0-255
                 normalised)
  r<r>.boxes<i>  [K, 4] xyxy in the resized (and flipped) image
  r<r>.map<i>    [K, 256] the collated positive map (binarised, as BatchCollator batches it)
and ids<i>, mask<i> [32] (int64) the caption's token ids and attention mask.
"""
import json
import os
import pathlib
import random
import sys
import types

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from transformers import RobertaTokenizerFast

import fine_official

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/data/fine/batches"


class CocoStandIn:
    """pycocotools.coco.COCO as CocoDetection and ModulatedDataset call it."""

    def __init__(self, annotation_file):
        with open(annotation_file) as f:
            self.dataset = json.load(f)
        self.imgs = {im["id"]: im for im in self.dataset["images"]}
        self.anns = {a["id"]: a for a in self.dataset.get("annotations", [])}
        self.img_to_anns = {}
        for a in self.dataset.get("annotations", []):
            self.img_to_anns.setdefault(a["image_id"], []).append(a["id"])

    def getAnnIds(self, imgIds=(), iscrowd=None):
        ids = imgIds if isinstance(imgIds, (list, tuple)) else [imgIds]
        return [a for i in ids for a in self.img_to_anns.get(i, [])]

    def loadAnns(self, ids):
        return [self.anns[i] for i in ids]

    def loadImgs(self, ids):
        return [self.imgs[i] for i in (ids if isinstance(ids, (list, tuple)) else [ids])]


def write_data():
    rng = np.random.default_rng(17)
    # Smooth images (a gradient plus noise), so that resampling differences would show.
    for name, (w, h) in {"a.png": (50, 37), "b.png": (31, 44)}.items():
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 200.0 / w, yy * 200.0 / h, (xx + yy) * 100.0 / (w + h)], axis=-1)
        pixels = np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(OUT / name)
    caption_a = "a red circle and a blue square"
    assert caption_a[18:23] == " blue" and caption_a[24:30] == "square"
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 50, "height": 37, "caption": caption_a},
            {"id": 2, "file_name": "b.png", "width": 31, "height": 44, "caption": "two shapes"},
            {"id": 3, "file_name": "a.png", "width": 50, "height": 37, "caption": "a dot"},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "bbox": [3.5, 4.25, 20, 10.5], "area": 210, "category_id": 1, "tokens_positive": [[2, 5]]},
            {"id": 2, "image_id": 1, "bbox": [40, 30, 20, 20], "area": 400, "category_id": 1, "tokens_positive": [[6, 12]]},
            {"id": 3, "image_id": 1, "bbox": [60, 5, 10, 10], "area": 100, "category_id": 1, "tokens_positive": [[0, 1]]},
            {"id": 4, "image_id": 1, "bbox": [10, 10, 0.5, 20], "area": 10, "category_id": 1, "tokens_positive": [[13, 16]]},
            {"id": 5, "image_id": 1, "bbox": [25, 2, 12.75, 30], "area": 382, "category_id": 1, "tokens_positive": [[18, 23], [24, 30]]},
            {"id": 6, "image_id": 2, "bbox": [0, 0, 31, 44], "area": 1364, "category_id": 1, "tokens_positive": [[0, 3]]},
            {"id": 7, "image_id": 2, "bbox": [5, 5, 1.5, 1.5], "area": 2, "category_id": 1, "tokens_positive": [[4, 10]]},
            {"id": 8, "image_id": 2, "bbox": [2, 2, 9, 9], "area": 81, "category_id": 1, "iscrowd": 1, "tokens_positive": [[4, 10]]},
            {"id": 9, "image_id": 3, "bbox": [3, 3, 1, 1], "area": 1, "category_id": 1, "tokens_positive": [[2, 5]]},
        ],
    }
    with open(OUT / "grounding.json", "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    write_data()
    ns = fine_official.load_official()  # the package maskrcnn_benchmark, importable from here on
    from maskrcnn_benchmark.structures.bounding_box import BoxList
    from maskrcnn_benchmark.structures.image_list import to_image_list

    pycocotools = types.ModuleType("pycocotools")
    pycocotools.coco = types.ModuleType("pycocotools.coco")
    pycocotools.coco.COCO = CocoStandIn
    sys.modules["pycocotools"] = pycocotools
    sys.modules["pycocotools.coco"] = pycocotools.coco

    scope = {"torch": torch, "torchvision": torchvision, "BoxList": BoxList, "Image": Image, "np": np,
             "random": random, "F": torchvision.transforms.functional, "to_image_list": to_image_list}
    fine_official.exec_official_defs("data/datasets/coco.py", ["_has_only_empty_bbox", "has_valid_annotation"], scope)
    fine_official.exec_official_defs("data/datasets/od_to_grounding.py", ["sanity_check_target_after_processing"], scope)
    fine_official.exec_official_defs(
        "data/datasets/modulated_coco.py",
        ["ModulatedDataset", "ConvertCocoPolysToMask", "create_positive_map", "create_greenlight_map",
         "create_positive_map_for_od_labels"], scope)
    fine_official.exec_official_defs("data/transforms/transforms.py",
                                     ["Compose", "Resize", "RandomHorizontalFlip", "ToTensor", "Normalize"], scope)
    fine_official.exec_official_defs("data/collate_batch.py", ["BatchCollator"], scope)

    tok = RobertaTokenizerFast(str(OUT / "vocab.json"), str(OUT / "merges.txt"))
    # FIBER's fine-grained configs: PIXEL_MEAN/STD below, TO_BGR255 (defaults.py, FORMAT "").
    normalize = scope["Normalize"](mean=[103.530, 116.280, 123.675], std=[57.375, 57.120, 58.395], format="bgr255")
    runs = [(64, 100, 0.0), (64, 100, 1.0), (80, 100, 0.0)]
    tensors = {}
    for r, (min_size, max_size, flip) in enumerate(runs):
        transforms = scope["Compose"]([scope["Resize"]((min_size,), max_size), scope["RandomHorizontalFlip"](flip),
                                       scope["ToTensor"](), normalize])
        dataset = scope["ModulatedDataset"](str(OUT), str(OUT / "grounding.json"), transforms, return_masks=False,
                                            return_tokens=True, is_train=True, tokenizer=tok, max_query_len=256)
        assert [dataset.coco.imgs[i]["id"] for i in dataset.ids] == [1, 2], dataset.ids  # image 3 left out
        samples = [dataset[i] for i in range(len(dataset))]
        images, targets, _, positive_map, _, _ = scope["BatchCollator"](32)(samples)
        offset = 0
        for i, target in enumerate(targets):
            k = len(target.bbox)
            tensors[f"r{r}.image{i}"] = images.tensors[i].contiguous()
            tensors[f"r{r}.boxes{i}"] = target.bbox.float().contiguous()
            tensors[f"r{r}.map{i}"] = positive_map[offset:offset + k].float().contiguous()
            offset += k
            print(f"run {r} image {i}: {tuple(images.tensors[i].shape)} image size {target.size}, {k} boxes")
    for i, caption in enumerate(["a red circle and a blue square", "two shapes"]):
        enc = tok(caption, max_length=32, padding="max_length", truncation=True, return_tensors="pt")
        tensors[f"ids{i}"] = enc["input_ids"][0].to(torch.int64).contiguous()
        tensors[f"mask{i}"] = enc["attention_mask"][0].to(torch.int64).contiguous()
    save_file(tensors, str(OUT / "batches.safetensors"),
              metadata={"official_commit": ns.commit, "torch": torch.__version__})
    print("wrote", OUT / "batches.safetensors", os.path.getsize(OUT / "batches.safetensors"), "bytes")


if __name__ == "__main__":
    main()
