"""Fixture for tests/train/test_fine_recipe.cpp: 12 iterations of the OFFICIAL fine-grained training
recipe on a toy parameter set named like the real model, float32.

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_fine_recipe.py

Taken from the microsoft/FIBER mirror at run time and executed (nothing committed):
make_optimizer and make_lr_scheduler (solver/build.py), WarmupMultiStepLR
(solver/lr_scheduler.py), ModelEma (utils/ema.py). The weight-decay schedule lives inside
engine/trainer.py's do_train loop, which cannot run alone; its lines are restated below, marked.

Settings chosen so every rule acts, and so that torch.optim.AdamW's form (decay before the update,
eps after v's bias correction) differs measurably from HF's: large lr (0.05) and weight decay (0.5),
gradients of 1e-6 on the biases. Also lr factors for the language backbone (LANG_LR) and the image
backbone body (BACKBONE_BODY_LR_FACTOR 0.5), biases (x2 lr, WEIGHT_DECAY_BIAS 0.1), norms
(WEIGHT_DECAY_NORM_FACTOR 0.5), warmup over 4 iterations from 0.001, milestones round(0.5 * 12) = 6
and round(0.75 * 12) = 9, weight decay dropped at iterations >= 0.667 * milestone, EMA 0.9, the
whole model's gradients clipped to norm 1 (the random gradients are larger, so clipping acts).

Writes tests/data/train/fine_recipe.safetensors: init.<name>, grad.<iteration>.<name>, final.<name>,
ema.<name>, lr and wd ([12, P]: each parameter's lr and weight decay used at each step).
"""
import collections
import copy
import itertools
import pathlib
import types
from bisect import bisect_right

import torch
from safetensors.torch import save_file

import fine_official

ROOT = pathlib.Path(__file__).resolve().parents[2]


scope = {"torch": torch, "itertools": itertools, "bisect_right": bisect_right, "math": __import__("math"),
         "deepcopy": copy.deepcopy, "OrderedDict": collections.OrderedDict}
fine_official.exec_official_defs("solver/lr_scheduler.py", ["WarmupMultiStepLR"], scope)
fine_official.exec_official_defs("solver/build.py", ["make_optimizer", "make_lr_scheduler"], scope)
fine_official.exec_official_defs("utils/ema.py", ["ModelEma"], scope)

PARAMS = {
    "fusion_backbone.backbone.body.layers.0.blocks.0.attn.qkv.weight": (6, 4),
    "fusion_backbone.backbone.body.layers.0.blocks.0.attn.relative_position_bias_table": (5, 2),
    "fusion_backbone.backbone.body.norm1.weight": (4,),
    "fusion_backbone.backbone.fpn.fpn_inner2.bias": (3,),
    "fusion_backbone.language_backbone.body.model.encoder.layer.0.attention.output.LayerNorm.weight": (4,),
    "fusion_backbone.language_backbone.body.model.encoder.layer.0.attention.self.query.bias": (4,),
    "rpn.head.dyhead_tower.0.DyConv.0.conv.weight": (3, 2, 3, 3),
    "rpn.head.bias_lang": (5,),
    "rpn.head.bias0": (1,),
    "rpn.head.log_scale": (1,),
}


def build_model():
    root = torch.nn.Module()
    for name, shape in PARAMS.items():
        *path, leaf = name.split(".")
        m = root
        for part in path:
            if not hasattr(m, part):
                m.add_module(part, torch.nn.Module())
            m = getattr(m, part)
        m.register_parameter(leaf, torch.nn.Parameter(torch.randn(shape)))
    return root


ns = types.SimpleNamespace
cfg = ns(SOLVER=ns(
    BASE_LR=0.05, LANG_LR=0.01, BACKBONE_BODY_LR_FACTOR=0.5, BIAS_LR_FACTOR=2.0, WEIGHT_DECAY=0.5,
    WEIGHT_DECAY_BIAS=0.1, WEIGHT_DECAY_NORM_FACTOR=0.5, OPTIMIZER="ADAMW", MOMENTUM=0.9,
    CLIP_GRADIENTS=ns(ENABLED=True, CLIP_TYPE="full_model", CLIP_VALUE=1.0, NORM_TYPE=2.0),
    MULTI_MAX_EPOCH=(), USE_COSINE=False, USE_AUTOSTEP=False, STEPS=(0.5, 0.75), MAX_ITER=12, GAMMA=0.1,
    WARMUP_FACTOR=0.001, WARMUP_ITERS=4, WARMUP_METHOD="linear", WEIGHT_DECAY_SCHEDULE=True,
    WEIGHT_DECAY_SCHEDULE_RATIO=0.667, MODEL_EMA=0.9))

torch.manual_seed(20261206)
model = build_model()
names = [n for n, _ in model.named_parameters()]
assert sorted(names) == sorted(PARAMS), names  # named_parameters order: own parameters before submodules
out = {f"init.{n}": p.detach().clone() for n, p in model.named_parameters()}
optimizer = scope["make_optimizer"](cfg, model)
scheduler = scope["make_lr_scheduler"](cfg, optimizer)
model_ema = scope["ModelEma"](model, decay=cfg.SOLVER.MODEL_EMA)

# --- restated from engine/trainer.py (do_train): the weight-decay schedule's start ---
milestone_target = 0
for i, milstone in enumerate(list(scheduler.milestones)):
    if scheduler.last_epoch >= milstone * cfg.SOLVER.WEIGHT_DECAY_SCHEDULE_RATIO:
        milestone_target = i + 1
# ---

lrs, wds = [], []
gen = torch.Generator().manual_seed(7)
for iteration in range(cfg.SOLVER.MAX_ITER):
    optimizer.zero_grad()
    for n, p in model.named_parameters():
        # Tiny gradients on the biases, so that where eps enters (torch: after v's bias correction)
        # shows; large lr and weight decay, so that the decay's place (torch: before the update) shows.
        p.grad = torch.randn(p.shape, generator=gen) * (1e-6 if "bias" in n else 0.5)
        out[f"grad.{iteration}.{n}"] = p.grad.clone()
    lrs.append([g["lr"] for g in optimizer.param_groups])
    wds.append([g["weight_decay"] for g in optimizer.param_groups])
    optimizer.step()
    scheduler.step()
    # --- restated from engine/trainer.py (do_train): the weight-decay schedule's drop ---
    if cfg.SOLVER.WEIGHT_DECAY_SCHEDULE and hasattr(scheduler, "milestones"):
        if milestone_target < len(scheduler.milestones):
            next_milestone = list(scheduler.milestones)[milestone_target]
        else:
            next_milestone = float("inf")
        if scheduler.last_epoch >= next_milestone * cfg.SOLVER.WEIGHT_DECAY_SCHEDULE_RATIO:
            gamma = scheduler.gamma
            for param in optimizer.param_groups:
                if "weight_decay" in param:
                    param["weight_decay"] *= gamma
            milestone_target += 1
    # ---
    model_ema.update(model)

for n, p in model.named_parameters():
    out[f"final.{n}"] = p.detach().clone()
for n, v in model_ema.state_dict().items():
    out[f"ema.{n}"] = v.clone()
out["lr"] = torch.tensor(lrs, dtype=torch.float64)
out["wd"] = torch.tensor(wds, dtype=torch.float64)
(ROOT / "tests/data/train").mkdir(parents=True, exist_ok=True)
save_file({k: v.contiguous() for k, v in out.items()}, str(ROOT / "tests/data/train/fine_recipe.safetensors"))
print("milestones", scheduler.milestones, "lr of param 0:", [round(r[0], 8) for r in lrs])
print("wd of param 0:", [w[0] for w in wds])
