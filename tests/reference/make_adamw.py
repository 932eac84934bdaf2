"""Fixture for tests/train/test_adamw_parity.cpp: the official coarse optimiser recipe run for a
few steps on named parameters with fixed gradients.

Official recipe (microsoft/FIBER coarse_grained/fiber/modules/fiber_utils.py, set_schedule):
six parameter groups by substring rules on the names, transformers.optimization.AdamW
(correct_bias=True, betas (0.9, 0.98), eps 1e-8) and get_polynomial_decay_schedule_with_warmup
(power 1, lr_end 0, warmup = int(total * 0.1) for a float), stepped once per optimiser step.

The pinned transformers (5.x) no longer has transformers.optimization.AdamW (removed upstream), so
`HFAdamW` below restates its step() in plain torch ops, line for line as transformers 4.x wrote
it. The schedule is the pinned transformers' own get_polynomial_decay_schedule_with_warmup.
Gradients are clipped to a total L2 norm with torch.nn.utils.clip_grad_norm_ before each step.

Writes tests/data/train/adamw.safetensors (run with the pinned interpreter):
  init.<name>                initial parameters
  grad.<k>.<name>            the gradient given at step k (absent: p.grad is None at that step)
  after.<k>.<name>           every parameter after step k
  lr.<k>                     [6] each group's lr used by step k
  norm.<k>                   [1] the total gradient norm clip_grad_norm_ returned at step k
"""
import math
import pathlib

import torch
from safetensors.torch import save_file
from transformers.optimization import get_polynomial_decay_schedule_with_warmup

out = pathlib.Path(__file__).resolve().parents[1] / "data" / "train"
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(20261301)
torch.set_num_threads(1)

LR, WD, MULT_HEAD, MULT_CROSS = 1e-3, 0.01, 5.0, 5.0
TOTAL, WARMUP_FRACTION, STEPS, MAX_NORM = 10, 0.2, 7, 4.0


class HFAdamW(torch.optim.Optimizer):
    """transformers.optimization.AdamW (4.x) step(), restated."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=(1.0 - beta1))
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    bias_correction1 = 1.0 - beta1 ** state["step"]
                    bias_correction2 = 1.0 - beta2 ** state["step"]
                    step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=(-group["lr"] * group["weight_decay"]))


# Names hit every group, the "bias" substring trap and the head-and-cross-modal exclusion.
shapes = {
    "text_transformer.encoder.layer.0.attention.self.query.weight": (8, 8),   # decay
    "text_transformer.encoder.layer.0.attention.self.query.bias": (8,),       # no_decay
    "text_transformer.embeddings.LayerNorm.weight": (8,),                      # no_decay
    "vit_model.layers.0.blocks.0.attn.relative_position_bias_table": (9, 2),  # no_decay ("bias")
    "vit_model.layers.0.blocks.0.norm1.weight": (8,),                          # no_decay
    "itm_score.fc.weight": (2, 8),                                             # head_decay
    "itm_score.fc.bias": (2,),                                                 # head_no_decay
    "mlm_score.transform.LayerNorm.weight": (8,),                              # head_no_decay
    "cross_modal_image_pooler.dense.weight": (8, 8),                           # cross_modal_decay
    "text_transformer.encoder.layer.0.crossattention_i2t.output.dense.weight": (8, 8),  # cross_modal_decay
    "cross_modal_text_pooler.dense.bias": (8,),                                # cross_modal_no_decay
    "vit_model.layers.0.blocks.0.attn_t2i.norm.weight": (8,),                  # cross_modal_no_decay
    "cross_modal_itm_score.weight": (4, 4),                                    # excluded (head and cross)
}
late = "itm_score.fc.bias"  # has no gradient for the first two steps

params = {n: torch.nn.Parameter(torch.randn(*s)) for n, s in shapes.items()}
named = list(params.items())
no_decay = ["bias", "LayerNorm.bias", "LayerNorm.weight", "norm.bias", "norm.weight", "norm1.bias", "norm1.weight",
            "norm2.bias", "norm2.weight"]
head_names = ["vqa_classifier", "nlvr2_classifier", "mlm_score", "itm_score", "snli_classifier"]
cross_modal_names = ["cross_modal", "i2t", "t2i"]


def group(nd, head, cross):
    return [p for n, p in named
            if any(x in n for x in no_decay) == nd and any(x in n for x in head_names) == head
            and any(x in n for x in cross_modal_names) == cross]


groups = [
    {"params": group(False, False, False), "weight_decay": WD, "lr": LR},
    {"params": group(True, False, False), "weight_decay": 0.0, "lr": LR},
    {"params": group(False, True, False), "weight_decay": WD, "lr": LR * MULT_HEAD},
    {"params": group(True, True, False), "weight_decay": 0.0, "lr": LR * MULT_HEAD},
    {"params": group(False, False, True), "weight_decay": WD, "lr": LR * MULT_CROSS},
    {"params": group(True, False, True), "weight_decay": 0.0, "lr": LR * MULT_CROSS},
]
optimizer = HFAdamW(groups, lr=LR, eps=1e-8, betas=(0.9, 0.98))
warmup = int(TOTAL * WARMUP_FRACTION)
scheduler = get_polynomial_decay_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=TOTAL,
                                                      lr_end=0, power=1)

tensors = {f"init.{n}": p.detach().clone() for n, p in named}
for k in range(STEPS):
    for n, p in named:
        if n == late and k < 2:
            p.grad = None
            continue
        scale = 3.0 if k % 3 == 1 else 0.3  # some steps clip, some do not
        p.grad = torch.randn_like(p) * scale
        tensors[f"grad.{k}.{n}"] = p.grad.clone()
    norm = torch.nn.utils.clip_grad_norm_([p for _, p in named], MAX_NORM)
    tensors[f"norm.{k}"] = norm.reshape(1).float()
    tensors[f"lr.{k}"] = torch.tensor([g["lr"] for g in optimizer.param_groups], dtype=torch.float64)
    optimizer.step()
    scheduler.step()
    for n, p in named:
        tensors[f"after.{k}.{n}"] = p.detach().clone()

save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "adamw.safetensors"),
          metadata={"steps": str(STEPS), "total": str(TOTAL), "warmup_fraction": str(WARMUP_FRACTION),
                    "lr": str(LR), "weight_decay": str(WD), "max_norm": str(MAX_NORM)})
print("wrote", out / "adamw.safetensors", len(tensors), "tensors")
