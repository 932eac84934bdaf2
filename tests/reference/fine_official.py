"""Imports pieces of the OFFICIAL FIBER fine-grained code (microsoft/FIBER,
fine_grained/maskrcnn_benchmark) for the detection fixtures, without building it.

Nothing of the official code is committed here: `load_official()` extracts the files below at run
time from a bare git mirror into a temporary package `maskrcnn_benchmark` and imports them. The
official package needs its compiled extension (`_C`) and imports the whole layer zoo from
`layers/__init__.py`; the fixtures only need pure-PyTorch parts, so those two are stand-ins:
- `maskrcnn_benchmark._C`: empty (the CUDA/C++ ops are never called on our path);
- `maskrcnn_benchmark.layers`: exposes the real sigmoid_focal_loss.py and iou_loss.py, and inert
  names for nms / ml_nms / smooth_l1_loss (imported by boxlist_ops.py and loss.py, not called);
- `maskrcnn_benchmark.modeling` and `.modeling.rpn` package inits are empty (the real ones import
  every head), `utils.shallow_contrastive_loss_helper` is empty (only star-imported).
"""
import atexit
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import types

DEFAULT_MIRROR = "/work/.mirror/microsoft+FIBER/repo"
REAL_FILES = [
    "structures/bounding_box.py", "structures/image_list.py", "structures/boxlist_ops.py",
    "modeling/box_coder.py", "modeling/matcher.py", "modeling/balanced_positive_negative_sampler.py",
    "modeling/utils.py", "modeling/rpn/anchor_generator.py", "modeling/rpn/loss.py",
    "modeling/rpn/inference.py",
    "layers/sigmoid_focal_loss.py", "layers/iou_loss.py", "utils/comm.py", "utils/amp.py",
]
STAND_INS = {
    "__init__.py": "",
    "_C.py": "",
    "structures/__init__.py": "",
    "modeling/__init__.py": "",
    "modeling/rpn/__init__.py": "",
    "utils/__init__.py": "",
    "utils/shallow_contrastive_loss_helper.py": "",
    "layers/__init__.py": (
        "from .sigmoid_focal_loss import SigmoidFocalLoss, TokenSigmoidFocalLoss\n"
        "from .iou_loss import IOULoss, IOUWHLoss\n"
        "def _not_here(*a, **k):\n"
        "    raise NotImplementedError('stand-in: the compiled op is not part of the fixtures')\n"
        "nms = ml_nms = smooth_l1_loss = _not_here\n"),
}


def git_head(mirror, rev="HEAD"):
    return subprocess.run(["git", "-C", mirror, "rev-parse", rev], check=True, capture_output=True,
                          text=True).stdout.strip()


def load_official(mirror=DEFAULT_MIRROR, rev="HEAD"):
    """Returns a namespace with the imported official modules and the commit they came from."""
    if not os.path.isdir(mirror):
        sys.exit(f"error: the microsoft/FIBER git mirror {mirror!r} does not exist")
    commit = git_head(mirror, rev)
    root = tempfile.mkdtemp(prefix="fiber_fine_official_")
    atexit.register(shutil.rmtree, root, True)
    pkg = os.path.join(root, "maskrcnn_benchmark")
    for rel, text in STAND_INS.items():
        os.makedirs(os.path.dirname(os.path.join(pkg, rel)), exist_ok=True)
        with open(os.path.join(pkg, rel), "w") as f:
            f.write(text)
    for rel in REAL_FILES:
        src = subprocess.run(["git", "-C", mirror, "show", f"{commit}:fine_grained/maskrcnn_benchmark/{rel}"],
                             check=True, capture_output=True).stdout
        os.makedirs(os.path.dirname(os.path.join(pkg, rel)), exist_ok=True)
        with open(os.path.join(pkg, rel), "wb") as f:
            f.write(src)
    sys.path.insert(0, root)
    ns = types.SimpleNamespace(commit=commit)
    for name, mod in [("bounding_box", "structures.bounding_box"), ("boxlist_ops", "structures.boxlist_ops"),
                      ("box_coder", "modeling.box_coder"), ("anchor_generator", "modeling.rpn.anchor_generator"),
                      ("loss", "modeling.rpn.loss"), ("focal", "layers.sigmoid_focal_loss"),
                      ("inference", "modeling.rpn.inference")]:
        setattr(ns, name, importlib.import_module(f"maskrcnn_benchmark.{mod}"))
    return ns
