"""Fixtures for tests/detection/test_prompt.cpp: grounding prompts and their phrase -> token maps,
written by the OFFICIAL fine-grained functions with transformers' RobertaTokenizerFast on the
committed fixture vocabulary (tests/data/text, see make_tokenizer.py).

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_prompts.py

The official functions are taken at run time from the microsoft/FIBER mirror (nothing of them is
committed): `clean_name` and `create_queries_and_maps` from engine/inference.py,
`create_positive_map` and `create_positive_map_label_to_token_from_positive_map` from
engine/predictor_FIBER.py. Only those function definitions are executed (the modules import cv2,
nltk and the model), with `AutoTokenizer.from_pretrained("roberta-base")` answered by the fixture
tokenizer (no network).

Writes tests/data/detection/prompts.json:
  captions:   text, spans per phrase [[begin, end], ...] (code points), tokens per phrase (label 1..P:
              nonzero columns of create_positive_map), ids of the text
  detection:  categories, the official query text, each category's span, tokens per label
              (create_queries_and_maps' positive_map_label_to_token)
"""
import json
import pathlib
import re
import types

import torch
import transformers
from transformers import RobertaTokenizerFast

import fine_official

ROOT = pathlib.Path(__file__).resolve().parents[2]


tok = RobertaTokenizerFast(str(ROOT / "tests/data/text/vocab.json"), str(ROOT / "tests/data/text/merges.txt"))
assert len(tok) > 100
scope = {"torch": torch, "re": re}
fine_official.exec_official_defs("engine/inference.py", ["clean_name", "create_queries_and_maps", "create_positive_dict"], scope)
fine_official.exec_official_defs("engine/predictor_FIBER.py",
                   ["create_positive_map", "create_positive_map_label_to_token_from_positive_map"], scope)
scope["defaultdict"] = __import__("collections").defaultdict
transformers.AutoTokenizer.from_pretrained = staticmethod(lambda name, *a, **k: tok)

# ---- captions with given phrase spans (the demo's path: create_positive_map, plus=1) ------------
captions = [
    ("a red cube left of the blue ball", [[(2, 10)], [(23, 32)]]),
    ("the cat. the dog.", [[(4, 7)], [(13, 16)]]),
    ("two cats and a cat", [[(4, 8), (15, 18)], [(0, 3)]]),              # a phrase with two spans
    ("a big  dog", [[(5, 10)], [(0, 1)]]),                               # begins on a space: beg+1
    ("the ball ", [[(4, 9)], [(3, 8)]]),                                 # ends on a space: end-2
    ("café crème brûlée", [[(0, 4)], [(5, 17)]]),                        # non-ASCII code points
    ("look: the dog!", [[(4, 13)], [(10, 14)]]),                         # punctuation at both ends
    ("x  y", [[(1, 3)], [(0, 4)]]),                                      # a span of spaces only
]
caption_cases = []
for text, spans in captions:
    tokenized = tok([text], return_tensors="pt")
    positive_map = scope["create_positive_map"](tokenized, spans)
    label_to_token = scope["create_positive_map_label_to_token_from_positive_map"](positive_map, plus=1)
    caption_cases.append({"text": text, "spans": spans, "ids": tokenized["input_ids"][0].tolist(),
                          "tokens": [label_to_token[j + 1] for j in range(len(spans))]})

# ---- detection prompts from category lists (create_queries_and_maps) ---------------------------
cfg = types.SimpleNamespace(
    DATASETS=types.SimpleNamespace(SEPARATION_TOKENS=". ", CAPTION_PROMPT=None, USE_CAPTION_PROMPT=False),
    MODEL=types.SimpleNamespace(LANGUAGE_BACKBONE=types.SimpleNamespace(TOKENIZER_TYPE="roberta-base",
                                                                        MAX_QUERY_LEN=256)))
category_lists = [
    ["person", "bicycle", "traffic_light", "fire hydrant"],
    ["hot dog (food)", "tv(monitor) screen (big)", "a__b", "x   y", "teddy bear"],
    ["café", "naïve (art)", "München"],
]
detection_cases = []
for cats in category_lists:
    labels = list(range(1, len(cats) + 1))
    query, label_to_token = scope["create_queries_and_maps"](labels, cats, cfg=cfg)
    cleaned = [scope["clean_name"](c) for c in cats]
    detection_cases.append({"categories": cats, "cleaned": cleaned, "text": query,
                            "tokens": [sorted(set(label_to_token[j])) for j in labels]})

out = ROOT / "tests/data/detection/prompts.json"
out.write_text(json.dumps({"captions": caption_cases, "detection": detection_cases}, ensure_ascii=False, indent=1))
print("wrote", out)
for c in caption_cases + detection_cases:
    print(repr(c["text"]), c["tokens"])
