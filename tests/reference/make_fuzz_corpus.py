#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/fuzz_safetensors.cpp and fuzz/fuzz_torch_checkpoint.cpp
(fuzz/corpus/<name>/). Run after make_checkpoints.py, with the reference interpreter:

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_fuzz_corpus.py

torch_checkpoint seeds start with the mode byte of fuzz_torch_checkpoint.cpp: 0x00/0x02 = a
whole zip (small fixtures), 0x01/0x03/0x05 = a bare pickle that the target wraps into a zip whose
storages archive/data/0..7 hold 64 bytes each; those pickles come from torch.save of objects
whose storages are all exactly 64 bytes, so they load before mutation.
"""
import argparse
import collections
import io
import os
import shutil
import zipfile

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CKPT = os.path.join(ROOT, "tests", "data", "checkpoints")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def pickle_of(obj, protocol=2):
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_protocol=protocol)
    with zipfile.ZipFile(buf) as z:
        return z.read("archive/data.pkl")


def storages_of_64_bytes():
    g = torch.Generator().manual_seed(9)
    s = collections.OrderedDict()
    s["f32"] = torch.randn(16, generator=g)                       # data/0
    s["f16"] = torch.randn(4, 8, generator=g).half()              # data/1
    s["bf16"] = torch.randn(32, generator=g).bfloat16()           # data/2
    s["f64"] = torch.randn(2, 4, generator=g, dtype=torch.float64)  # data/3
    s["i64"] = torch.arange(8)                                    # data/4
    s["u8"] = torch.arange(64, dtype=torch.uint8).view(8, 8)      # data/5
    s["bool"] = torch.rand(64, generator=g) > 0.5                 # data/6
    s["i16"] = torch.arange(32, dtype=torch.int16)                # data/7
    return s


def main():
    for name in ("safetensors", "torch_checkpoint"):
        shutil.rmtree(os.path.join(CORPUS, name), ignore_errors=True)
        os.makedirs(os.path.join(CORPUS, name))

    for f in ("dtypes.safetensors", "small.pt.expected.safetensors", "views.pt.expected.safetensors",
              "parameters.pt.expected.safetensors"):
        shutil.copy(os.path.join(CKPT, f), os.path.join(CORPUS, "safetensors", f))

    def seed(name, data):
        with open(os.path.join(CORPUS, "torch_checkpoint", name), "wb") as out:
            out.write(data)

    for f, mode in (("small.pt", 0), ("views.pt", 2), ("protocol4.pt", 0), ("zip64.pt", 2), ("deflated.pt", 0),
                    ("complex.pt", 0), ("old_layout.pt", 0), ("parameters.pt", 2), ("maskrcnn.pth", 0)):
        with open(os.path.join(CKPT, f), "rb") as src:
            seed("zip_" + f, bytes([mode]) + src.read())

    s = storages_of_64_bytes()
    seed("pickle_dtypes", b"\x01" + pickle_of(s))
    seed("pickle_dtypes_protocol4", b"\x03" + pickle_of(s, protocol=4))
    base = torch.randn(4, 4, generator=torch.Generator().manual_seed(10))
    views = collections.OrderedDict([("full", base), ("t", base.t()[1:]), ("row", base[2:3]), ("x", base[0].expand(3, 4))])
    seed("pickle_views", b"\x01" + pickle_of(views))
    params = collections.OrderedDict([("p", torch.nn.Parameter(torch.randn(16)))])
    seed("pickle_parameters", b"\x01" + pickle_of(params))
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.randn(16))], lr=1e-3)
    opt.param_groups[0]["params"][0].grad = torch.ones(16)
    opt.step()
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2])
    lightning = {"epoch": 1, "global_step": 10, "pytorch-lightning_version": "1.3.2", "state_dict": views,
                 "optimizer_states": [opt.state_dict()], "lr_schedulers": [sched.state_dict()],
                 "hyper_parameters": argparse.Namespace(lr=1e-3, name="x"), "big": 2 ** 70, "b": b"bytes", "s": {1, 2}}
    seed("pickle_lightning", b"\x05" + pickle_of(lightning))
    seed("pickle_maskrcnn", b"\x01" + pickle_of({"model": collections.OrderedDict(("module." + k, v) for k, v in s.items()),
                                                 "iteration": 5}))
    for d in ("safetensors", "torch_checkpoint"):
        files = sorted(os.listdir(os.path.join(CORPUS, d)))
        print(d, len(files), sum(os.path.getsize(os.path.join(CORPUS, d, f)) for f in files), "bytes")


if __name__ == "__main__":
    main()
