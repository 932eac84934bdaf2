#!/usr/bin/env python3
"""Writes the weight-file fixtures of tests/data/checkpoints/ (fixed seeds; re-running gives the
same bytes). Run with the reference interpreter:

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_checkpoints.py

Torch checkpoints are written by torch.save itself; every torch fixture that fiber must read has
an `<name>.expected.safetensors` beside it, written by the safetensors package from the same
tensors made contiguous, whose metadata lists the state-dict names in order ("names") and the
placeholders fiber must report ("placeholders"), as JSON under the metadata key "expected". Layout fixtures (Lightning, maskrcnn_benchmark)
are built by hand as dicts with the same top-level keys; the optimizer state comes from a real
torch.optim.AdamW step.
"""
import argparse
import collections
import io
import json
import os
import sys
import types
import zipfile

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "checkpoints")


def path(name):
    return os.path.join(OUT, name)


def save_expected(name, state, placeholders=()):
    """The contiguous tensors of `state` (name -> tensor, in state-dict order) as safetensors."""
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    # One metadata key: the package keeps metadata in a hash map, so several keys come out in a
    # different order on each run.
    meta = {"expected": json.dumps({"names": list(state.keys()), "placeholders": sorted(placeholders)})}
    save_file(tensors, path(name + ".expected.safetensors"), metadata=meta)


def check_roundtrip(name, expected_state, key=None):
    """torch.load reads the fixture back to the expected tensors (so the fixture is genuine)."""
    loaded = torch.load(path(name), map_location="cpu", weights_only=False)
    if key:
        loaded = loaded[key]
    for k, v in expected_state.items():
        lk = k if k in loaded else "module." + k
        assert torch.equal(loaded[lk], v) or (v.is_floating_point() and torch.equal(loaded[lk].isnan(), v.isnan())), k


def special_floats():
    return [0.0, -0.0, 1.0, -1.5, 65504.0, 65520.0, -65536.0, 1e-8, 6e-8, 5.96e-8, 2.0**-24, 2.0**-25, 2.0**-14,
            3.0e38, -3.4e38, 1.17549435e-38, 1e-45, float("inf"), float("-inf"), float("nan"), 0.1, 1.0 / 3.0]


def dtype_state():
    g = torch.Generator().manual_seed(1)
    sf = torch.tensor(special_floats(), dtype=torch.float64)
    state = collections.OrderedDict()
    state["f32"] = torch.cat([sf.float(), torch.randn(10, generator=g)]).reshape(4, 8)
    state["f16"] = torch.cat([sf.half(), torch.randn(10, generator=g).half()]).reshape(2, 16)
    state["bf16"] = torch.cat([sf.bfloat16(), torch.randn(10, generator=g).bfloat16()]).reshape(32)
    state["f64"] = torch.cat([sf, torch.randn(2, generator=g, dtype=torch.float64)]).reshape(3, 8)
    state["i64"] = torch.tensor([0, 1, -1, 2**62, -(2**63), 2**63 - 1, 123456789012, -7], dtype=torch.int64)
    state["i32"] = torch.tensor([[0, 1, -1], [2**31 - 1, -(2**31), 77]], dtype=torch.int32)
    state["i16"] = torch.tensor([0, -32768, 32767, 5], dtype=torch.int16)
    state["i8"] = torch.tensor([0, -128, 127, -3], dtype=torch.int8)
    state["u8"] = torch.tensor([0, 255, 128, 7], dtype=torch.uint8)
    state["bool"] = torch.tensor([True, False, True, True, False])
    state["scalar"] = torch.tensor(2.5)
    state["empty"] = torch.zeros(0, 3)
    state["long_scalar"] = torch.tensor(42)
    return state


def write_dtypes():
    state = dtype_state()
    torch.save(state, path("dtypes.pt"))
    check_roundtrip("dtypes.pt", state)
    save_expected("dtypes.pt", state)
    save_file({k: v.contiguous() for k, v in state.items()}, path("dtypes.safetensors"),
              metadata={"format": "pt"})
    # A model saved whole-tensor as Parameters (torch._utils._rebuild_parameter).
    g = torch.Generator().manual_seed(2)
    params = collections.OrderedDict()
    params["weight"] = torch.nn.Parameter(torch.randn(3, 2, generator=g))
    params["frozen"] = torch.nn.Parameter(torch.randn(2, generator=g), requires_grad=False)
    torch.save(params, path("parameters.pt"))
    save_expected("parameters.pt", {k: v.detach() for k, v in params.items()})


def view_state():
    g = torch.Generator().manual_seed(3)
    state = collections.OrderedDict()
    fc = torch.randn(2, 16, generator=g)
    state["itm_score.fc.weight"] = fc
    state["rank_output.weight"] = fc[1:]  # FIBER shares this storage: offset 16, shape [1, 16]
    base = torch.randn(5, 4, generator=g)
    state["transposed_slice"] = base.t()[1:]  # [3, 5], strides (1, 4), offset 1
    state["expanded"] = torch.arange(3.0).expand(4, 3)  # stride 0
    state["narrow"] = torch.randn(2, 6, 3, generator=g)[:, 1:4]  # channel slice
    state["bf16_strided"] = torch.randn(4, 6, generator=g).bfloat16()[::2, 1::2]
    state["permuted"] = torch.randn(2, 3, 4, 5, generator=g).permute(0, 2, 3, 1)
    state["i64_every_other"] = torch.arange(20, dtype=torch.int64)[::2]
    state["f16_column"] = torch.randn(3, 4, generator=g).half()[:, 2]
    big = torch.randn(100, generator=g)
    state["small_window"] = big[40:46].view(2, 3)  # the whole 100-element storage is saved
    return state


def write_views():
    state = view_state()
    torch.save(state, path("views.pt"))
    check_roundtrip("views.pt", state)
    save_expected("views.pt", state)


def tiny_fiber_state(g):
    """A few coarse FIBER names and shapes, tiny, plus the ITC queues that must be dropped."""
    s = collections.OrderedDict()
    s["vit_model.patch_embed.proj.weight"] = torch.randn(8, 3, 4, 4, generator=g)
    s["vit_model.patch_embed.proj.bias"] = torch.randn(8, generator=g)
    s["vit_model.layers.0.blocks.0.attn.relative_position_index"] = torch.randint(0, 9, (4, 4), generator=g)
    s["vit_model.layers.0.blocks.0.attn.qkv.weight"] = torch.randn(24, 8, generator=g)
    s["text_transformer.embeddings.word_embeddings.weight"] = torch.randn(11, 8, generator=g)
    s["text_transformer.embeddings.position_ids"] = torch.arange(6).expand(1, -1)
    s["text_transformer.encoder.layer.0.alpha_t2i"] = torch.zeros(1)
    fc = torch.randn(2, 16, generator=g)
    s["itm_score.fc.weight"] = fc
    s["rank_output.weight"] = fc[1:]
    s["temp"] = torch.tensor(0.07)
    s["image_queue"] = torch.randn(16, 4, generator=g)
    s["text_queue"] = torch.randn(16, 4, generator=g)
    s["queue_ptr"] = torch.zeros(1, dtype=torch.long)
    s["queue_total"] = torch.zeros(1, dtype=torch.long)
    return s


def real_optimizer(state, lr=1e-3):
    """A real AdamW after one step on parameters shaped like the floating tensors of `state`."""
    params = [torch.nn.Parameter(v.clone()) for v in state.values() if v.is_floating_point()][:4]
    opt = torch.optim.AdamW(params, lr=lr)
    sum((p * p).sum() for p in params).backward()
    opt.step()
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 5])  # holds a collections.Counter
    return opt.state_dict(), sched.state_dict()


def fake_lightning_attribute_dict():
    """A class under Lightning's module name, so the pickle names it as Lightning would."""
    name = "pytorch_lightning.utilities.parsing"
    for part in ("pytorch_lightning", "pytorch_lightning.utilities", name):
        sys.modules.setdefault(part, types.ModuleType(part))
    module = sys.modules[name]

    class AttributeDict(dict):
        pass

    AttributeDict.__module__ = name
    AttributeDict.__qualname__ = "AttributeDict"
    module.AttributeDict = AttributeDict
    return AttributeDict


def write_lightning():
    g = torch.Generator().manual_seed(4)
    state = tiny_fiber_state(g)
    opt, sched = real_optimizer(state)
    AttributeDict = fake_lightning_attribute_dict()
    hparams = AttributeDict(config={"max_text_len": 40, "image_size": 384, "loss_names": {"itm": 1, "mlm": 1},
                                    "learning_rate": 1e-4, "resume_from": None, "fast_dev_run": False})
    ckpt = {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "1.3.2",
        "state_dict": state,
        "callbacks": {"ModelCheckpoint{'monitor': 'val/the_metric', 'mode': 'max'}": {
            "monitor": "val/the_metric", "best_model_score": torch.tensor(0.75),
            "best_model_path": "/tmp/ckpt/epoch=3.ckpt", "current_score": torch.tensor(0.5),
            "dirpath": "/tmp/ckpt"}},
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4, "completed": 3}}}},
        "optimizer_states": [opt],
        "lr_schedulers": [sched],
        "native_amp_scaling_state": {"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 10},
        "hparams_name": "kwargs",
        "hyper_parameters": hparams,
        "cli_args": argparse.Namespace(seed=0, precision=16),
    }
    torch.save(ckpt, path("lightning.ckpt"))
    check_roundtrip("lightning.ckpt", state, key="state_dict")
    placeholders = ["hyper_parameters pytorch_lightning.utilities.parsing.AttributeDict",
                    "cli_args argparse.Namespace", "lr_schedulers.0.milestones collections.Counter"]
    save_expected("lightning.ckpt", state, placeholders)


def write_maskrcnn():
    g = torch.Generator().manual_seed(5)
    state = collections.OrderedDict()
    state["fusion_backbone.backbone.body.layers.0.blocks.0.attn.qkv.weight"] = torch.randn(12, 4, generator=g)
    state["fusion_backbone.backbone.fpn.fpn_inner2.weight"] = torch.randn(4, 4, 1, 1, generator=g)
    state["rpn.head.dyhead_tower.0.DyConv.0.conv.weight"] = torch.randn(4, 4, 3, 3, generator=g).half()
    state["rpn.head.scales.0.scale"] = torch.ones(1)
    state["rpn.anchor_generator.cell_anchors.0"] = torch.randn(3, 4, generator=g, dtype=torch.float64)
    opt, sched = real_optimizer(state)
    ckpt = {
        "model": collections.OrderedDict(("module." + k, v) for k, v in state.items()),
        "optimizer": opt,
        "scheduler": sched,
        "iteration": 90000,
    }
    torch.save(ckpt, path("maskrcnn.pth"))
    check_roundtrip("maskrcnn.pth", state, key="model")
    save_expected("maskrcnn.pth", state, ["scheduler.milestones collections.Counter"])


def write_maskrcnn_ema():
    """A trainer checkpoint with MODEL_EMA on: "model" (DDP, "module." prefixed) and "model_ema" (the
    EMA copy's own state dict, here also prefixed, as ModelEma keeps a DDP model's "module.")."""
    g = torch.Generator().manual_seed(6)
    model, ema = collections.OrderedDict(), collections.OrderedDict()
    for k, shape in [("rpn.head.bias0", (1,)), ("rpn.head.bbox_pred.weight", (4, 8, 1, 1))]:
        model[k] = torch.randn(*shape, generator=g)
        ema[k] = torch.randn(*shape, generator=g)
    ckpt = {
        "model": collections.OrderedDict(("module." + k, v) for k, v in model.items()),
        "model_ema": collections.OrderedDict(("module." + k, v) for k, v in ema.items()),
        "iteration": 10,
    }
    torch.save(ckpt, path("maskrcnn_ema.pth"))
    check_roundtrip("maskrcnn_ema.pth", ema, key="model_ema")
    save_expected("maskrcnn_ema.pth.model", model)
    save_expected("maskrcnn_ema.pth.model_ema", ema)


def rewrite_zip(src, dst, rename=None, drop=(), add=(), compress=zipfile.ZIP_STORED):
    """Copies the entries of a torch zip into a new archive, optionally renamed/dropped/added."""
    with zipfile.ZipFile(path(src)) as zin:
        entries = [(info, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path(dst), "w", compression=compress) as zout:
        for info, blob in entries:
            if info.filename in drop:
                continue
            name = rename(info.filename) if rename else info.filename
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zi.compress_type = compress
            zout.writestr(zi, blob)
        for name, data in add:
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zout.writestr(zi, data)


def write_archive_variants():
    g = torch.Generator().manual_seed(6)
    state = collections.OrderedDict()
    state["a.weight"] = torch.randn(4, 3, generator=g)
    state["a.bias"] = torch.randn(4, generator=g).double()
    state["b.t"] = torch.randn(3, 5, generator=g).t()
    state["c.idx"] = torch.arange(7, dtype=torch.int32)
    torch.save(state, path("small.pt"))
    check_roundtrip("small.pt", state)
    save_expected("small.pt", state)
    # pickle protocol 4: FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL...
    torch.save(state, path("protocol4.pt"), pickle_protocol=4)
    check_roundtrip("protocol4.pt", state)
    # zip64 records everywhere: zipfile switches to zip64 above ZIP64_LIMIT, so lower it.
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 8, 2
    try:
        rewrite_zip("small.pt", "zip64.pt", rename=lambda n: n.replace("small/", "zip64/", 1))
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved
    check_roundtrip("zip64.pt", state)
    # Deflated entries (torch never writes them; a re-zipped checkpoint might have them).
    rewrite_zip("small.pt", "deflated.pt", rename=lambda n: n.replace("small/", "deflated/", 1),
                compress=zipfile.ZIP_DEFLATED)
    check_roundtrip("deflated.pt", state)
    # Old layout under another archive name: no byteorder entry, a .data/version entry, and a
    # prefix that is not the file's stem.
    rewrite_zip("small.pt", "old_layout.pt", rename=lambda n: n.replace("small/", "archive/", 1),
                drop=("small/byteorder",), add=(("archive/.data/version", b"3\n"),))
    check_roundtrip("old_layout.pt", state)
    # Saved on a big-endian machine (byteorder says so): must be refused.
    with zipfile.ZipFile(path("small.pt")) as z:
        data = {i.filename: z.read(i.filename) for i in z.infolist()}
    with zipfile.ZipFile(path("bigendian.pt"), "w") as z:
        for name, blob in data.items():
            zi = zipfile.ZipInfo(name.replace("small/", "bigendian/", 1), date_time=(2024, 1, 1, 0, 0, 0))
            z.writestr(zi, b"big" if name.endswith("byteorder") else blob)
    # The legacy (non-zip) format. Its storage keys are memory addresses, so it holds no tensor,
    # only what fiber looks at: the pickle header.
    torch.save({"epoch": 1}, path("legacy.pt"), _use_new_zipfile_serialization=False)
    # A TorchScript archive.
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path("torchscript.pt"))
    rewrite_zip("torchscript.pt", "torchscript.pt")  # fixed timestamps (the jit writer stamps the time)
    # A state dict with a tensor fiber cannot read (complex storage): listed, readable error.
    odd = collections.OrderedDict()
    odd["ok"] = torch.ones(2)
    odd["z"] = torch.ones(2, dtype=torch.complex64)
    torch.save(odd, path("complex.pt"))


def write_half_conversions():
    """torch's float32 -> fp16/bf16 rounding and fp16/bf16 -> float32 widening, for core/half.hpp."""
    g = torch.Generator().manual_seed(7)
    special = torch.tensor(special_floats(), dtype=torch.float32)
    # Values at and next to fp16 / bf16 halfway points, where rounding direction matters.
    h = torch.arange(0, 0x7C00, 37, dtype=torch.int32).to(torch.int16).view(torch.float16).float()
    h_next = torch.arange(1, 0x7C01, 37, dtype=torch.int32).to(torch.int16).view(torch.float16).float()
    mid = (h.double() + h_next.double()) / 2
    midpoints = torch.cat([mid.float(), torch.nextafter(mid.float(), torch.tensor(float("inf"))),
                           torch.nextafter(mid.float(), torch.tensor(float("-inf")))])
    b = (torch.arange(0, 0x7F80, 97, dtype=torch.int32) << 16).view(torch.float32)
    b_mid = (b.view(torch.int32) + 0x8000).view(torch.float32)
    b_mid_odd = ((b.view(torch.int32) | 0x10000) + 0x8000).view(torch.float32)
    random = torch.cat([torch.randn(2000, generator=g) * 10.0 ** torch.randint(-9, 6, (2000,), generator=g)])
    inputs = torch.cat([special, midpoints, -midpoints, b, b_mid, b_mid_odd, -b_mid, random]).contiguous()
    all16 = torch.arange(0, 65536, dtype=torch.int32).to(torch.int16)
    save_file({
        "input": inputs,
        "to_f16_bits": inputs.half().view(torch.int16),
        "to_bf16_bits": inputs.bfloat16().view(torch.int16),
        "all_f16_as_f32": all16.view(torch.float16).float(),
        "all_bf16_as_f32": all16.view(torch.bfloat16).float(),
    }, path("half_conversions.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    write_dtypes()
    write_views()
    write_lightning()
    write_maskrcnn()
    write_maskrcnn_ema()
    write_archive_variants()
    write_half_conversions()
    for f in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(path(f)):>8}  {f}")


if __name__ == "__main__":
    main()
