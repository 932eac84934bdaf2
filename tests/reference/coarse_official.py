"""Runs the OFFICIAL FIBER coarse modules (microsoft/FIBER, coarse_grained/fiber/modules) on a
configuration of our choosing, with random weights. Shared by make_coarse.py (tiny fixtures) and
make_coarse_full.py (FIBER-B sized checkpoint).

Nothing of the official code is committed here: `load_official()` extracts its files at run time
from a bare git mirror into a temporary package `fiber_official.modules` and imports it. The
official code pins timm 0.4.12, transformers 4.6 and pytorch_lightning 1.3; the reference venv has
none of those versions (or no Lightning at all), so the imports that break are served by small
stand-in modules of our own, put into sys.modules before the import:

- pytorch_lightning: a LightningModule base (nn.Module + save_hyperparameters/hparams);
- timm (all of it): the five layer helpers the Swin code uses, written to timm 0.4.12's
  semantics (PatchEmbed = conv + flatten + norm, Mlp = fc1 -> GELU -> fc2, DropPath identity in
  eval), plus inert names for the imports that are never called with pretrained=False;
- transformers.modeling_utils: PreTrainedModel with transformers 4.6's semantics where the
  forward depends on them (get_extended_attention_mask = (1 - m) * -10000 in the parameter dtype;
  transformers 5 uses finfo.min) and `from_pretrained(name)` building the model from a config we
  register instead of downloading roberta-base;
- transformers.file_utils: no-op docstring decorators;
- einops: only imported by objectives.py, unused by infer();
- fiber_official.modules.fiber_utils: set_metrics() does nothing (metrics are training-only).
RobertaConfig, ACT2FN["gelu"] (erf GELU) and BertPredictionHeadTransform come from the installed
transformers: they compute what 4.6 computes.
"""
import atexit
import importlib
import inspect
import math
import os
import shutil
import subprocess
import sys
import tempfile
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_MIRROR = "/work/.mirror/microsoft+FIBER/repo"
OFFICIAL_FILES = ["swin_transformer", "roberta", "heads", "objectives", "fiber_module", "swin_helpers",
                  "dist_utils"]
QUEUE_KEYS = ["image_queue", "text_queue", "image_input_queue", "text_input_queue", "text_input_mask_queue",
              "queue_ptr", "queue_total"]

# Text configs that the stand-in RobertaModel.from_pretrained(name) builds from (name -> kwargs).
PRETRAINED_TEXT_CONFIGS = {}


# ---------------------------------------------------------------------------------------------
# Stand-in modules
# ---------------------------------------------------------------------------------------------
def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def _inert(name):
    """A placeholder for an import the official code names but never calls on our path."""
    def fail(*args, **kwargs):
        raise NotImplementedError(f"stand-in {name} called: not used with pretrained=False")
    fail.__name__ = name
    return fail


class _AttributeDict(dict):
    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(key) from e


class _LightningModule(nn.Module):
    """What FIBERTransformerSS uses of pytorch_lightning 1.3's LightningModule."""

    def save_hyperparameters(self):
        # Lightning reads the calling __init__'s arguments; FIBERTransformerSS has one: config.
        frame = inspect.currentframe().f_back
        args = inspect.getargvalues(frame)
        self.hparams = _AttributeDict({k: args.locals[k] for k in args.args if k != "self"})


def _to_2tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


class _PatchEmbed(nn.Module):
    """timm 0.4.12 PatchEmbed: Conv2d(kernel = stride = patch), flatten to [B, L, C], norm."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, norm_layer=None, flatten=True):
        super().__init__()
        self.img_size = _to_2tuple(img_size)
        self.patch_size = _to_2tuple(patch_size)
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.flatten = flatten
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def forward(self, x):  # x: [B, 3, H, W] -> [B, H/p * W/p, C]
        assert tuple(x.shape[2:]) == self.img_size, f"input {tuple(x.shape[2:])} != {self.img_size}"
        x = self.proj(x)
        if self.flatten:
            x = x.flatten(2).transpose(1, 2)
        return self.norm(x)


class _Mlp(nn.Module):
    """timm 0.4.12 Mlp: fc1 -> act -> drop -> fc2 -> drop."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class _DropPath(nn.Module):
    """Stochastic depth; the identity in eval mode (the only mode these scripts run)."""

    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if not self.training or not self.drop_prob:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def _trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    return nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)


def _init_vit_weights(module, name="", head_bias=0.0, jax_impl=False):
    """Initial values only (every parameter is overwritten by randomize())."""
    if isinstance(module, nn.Linear):
        _trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _overlay_external_default_cfg(default_cfg, kwargs):
    """timm 0.4.12: an `external_default_cfg` kwarg (never passed here) overrides default_cfg."""
    external = kwargs.pop("external_default_cfg", None)
    if external:
        default_cfg.pop("url", None)
        default_cfg.pop("hf_hub", None)
        default_cfg.update(external)


def _timm_modules():
    layers = _module("timm.models.layers", PatchEmbed=_PatchEmbed, Mlp=_Mlp, DropPath=_DropPath,
                     to_2tuple=_to_2tuple, trunc_normal_=_trunc_normal_, Conv2dSame=_inert("Conv2dSame"),
                     Linear=nn.Linear)
    mods = {
        "timm": _module("timm", __path__=[]),
        "timm.data": _module("timm.data", IMAGENET_DEFAULT_MEAN=(0.485, 0.456, 0.406),
                             IMAGENET_DEFAULT_STD=(0.229, 0.224, 0.225)),
        "timm.models": _module("timm.models", __path__=[]),
        "timm.models.helpers": _module("timm.models.helpers", build_model_with_cfg=_inert("build_model_with_cfg"),
                                       overlay_external_default_cfg=_overlay_external_default_cfg),
        "timm.models.layers": layers,
        "timm.models.registry": _module("timm.models.registry", register_model=lambda fn: fn),
        "timm.models.vision_transformer": _module("timm.models.vision_transformer",
                                                  checkpoint_filter_fn=_inert("checkpoint_filter_fn"),
                                                  _init_vit_weights=_init_vit_weights),
        "timm.models.features": _module("timm.models.features", FeatureListNet=_inert("FeatureListNet"),
                                        FeatureDictNet=_inert("FeatureDictNet"),
                                        FeatureHookNet=_inert("FeatureHookNet")),
        "timm.models.hub": _module("timm.models.hub", has_hf_hub=_inert("has_hf_hub"),
                                   download_cached_file=_inert("download_cached_file"),
                                   load_state_dict_from_hf=_inert("load_state_dict_from_hf"),
                                   load_state_dict_from_url=_inert("load_state_dict_from_url")),
    }
    return mods


class _PreTrainedModel(nn.Module):
    """transformers 4.6 PreTrainedModel, the parts RobertaModel's construction and infer() use."""

    config_class = None
    base_model_prefix = ""

    def __init__(self, config, *inputs, **kwargs):
        super().__init__()
        self.config = config

    @property
    def dtype(self):
        return next(self.parameters()).dtype

    def init_weights(self):
        self.apply(self._init_weights)

    def get_extended_attention_mask(self, attention_mask, input_shape, device):
        # 4.6 (modeling_utils.ModuleUtilsMixin): [B, L] -> [B, 1, 1, L], in the parameter dtype,
        # 0 where attended and -10000 where masked. (transformers >= 4.?? uses finfo(dtype).min.)
        if attention_mask.dim() == 3:
            ext = attention_mask[:, None, :, :]
        elif attention_mask.dim() == 2:
            assert not self.config.is_decoder, "decoder masks are not needed by infer()"
            ext = attention_mask[:, None, None, :]
        else:
            raise ValueError(f"wrong attention_mask shape {tuple(attention_mask.shape)}")
        ext = ext.to(dtype=self.dtype)
        return (1.0 - ext) * -10000.0

    def get_head_mask(self, head_mask, num_hidden_layers):
        assert head_mask is None
        return [None] * num_hidden_layers

    @classmethod
    def from_pretrained(cls, name, *args, **kwargs):
        from transformers import RobertaConfig
        if name not in PRETRAINED_TEXT_CONFIGS:
            raise KeyError(f"stand-in from_pretrained: no text config registered under {name!r}")
        model = cls(RobertaConfig(**PRETRAINED_TEXT_CONFIGS[name]))
        model.eval()
        return model


def _identity_decorator(*args, **kwargs):
    return lambda fn: fn


def install_stand_ins(package_dir):
    """Puts the stand-ins into sys.modules and writes fiber_utils.py into the temp package."""
    # The real transformers first (RobertaConfig, activations, bert head): it probes for timm with
    # importlib.util.find_spec, which a stand-in timm in sys.modules would break.
    import transformers  # noqa: F401
    import transformers.activations  # noqa: F401
    import transformers.modeling_outputs  # noqa: F401
    import transformers.models.bert.modeling_bert  # noqa: F401  (before modeling_utils is replaced)
    import transformers.models.roberta.configuration_roberta  # noqa: F401

    for name, mod in _timm_modules().items():
        sys.modules[name] = mod
    sys.modules["pytorch_lightning"] = _module("pytorch_lightning", LightningModule=_LightningModule)
    sys.modules["einops"] = _module("einops", rearrange=_inert("rearrange"))

    def find_pruneable_heads_and_indices(*args, **kwargs):
        raise NotImplementedError("head pruning is not used")

    sys.modules["transformers.modeling_utils"] = _module(
        "transformers.modeling_utils", PreTrainedModel=_PreTrainedModel,
        find_pruneable_heads_and_indices=find_pruneable_heads_and_indices,
        prune_linear_layer=_inert("prune_linear_layer"))
    sys.modules["transformers.file_utils"] = _module(
        "transformers.file_utils", add_code_sample_docstrings=_identity_decorator,
        add_start_docstrings=_identity_decorator, add_start_docstrings_to_model_forward=_identity_decorator,
        replace_return_docstrings=_identity_decorator)

    with open(os.path.join(package_dir, "fiber_utils.py"), "w") as f:
        f.write('"""Stand-in for the official fiber_utils (training metrics and schedules)."""\n\n\n'
                "def set_metrics(pl_module):\n    pass\n")


def git_head(mirror, rev="HEAD"):
    return subprocess.run(["git", "-C", mirror, "rev-parse", rev], check=True, capture_output=True,
                          text=True).stdout.strip()


def load_official(mirror=DEFAULT_MIRROR, rev="HEAD"):
    """Extracts the official modules into a temp package and imports them. Returns a namespace
    with the modules and the commit they came from."""
    if not os.path.isdir(mirror):
        sys.exit(f"error: the microsoft/FIBER git mirror {mirror!r} does not exist "
                 "(pass --mirror PATH to a clone or bare mirror of https://github.com/microsoft/FIBER)")
    commit = git_head(mirror, rev)
    root = tempfile.mkdtemp(prefix="fiber_official_")
    atexit.register(shutil.rmtree, root, True)
    pkg = os.path.join(root, "fiber_official")
    mods = os.path.join(pkg, "modules")
    os.makedirs(mods)
    open(os.path.join(pkg, "__init__.py"), "w").close()
    open(os.path.join(mods, "__init__.py"), "w").close()
    for name in OFFICIAL_FILES:
        src = subprocess.run(["git", "-C", mirror, "show", f"{commit}:coarse_grained/fiber/modules/{name}.py"],
                             check=True, capture_output=True).stdout
        with open(os.path.join(mods, name + ".py"), "wb") as f:
            f.write(src)
    install_stand_ins(mods)
    sys.path.insert(0, root)
    ns = types.SimpleNamespace(commit=commit, root=root)
    for name in ["swin_transformer", "roberta", "heads", "objectives", "fiber_module"]:
        setattr(ns, name, importlib.import_module(f"fiber_official.modules.{name}"))
    return ns


# ---------------------------------------------------------------------------------------------
# Model construction
# ---------------------------------------------------------------------------------------------
def build_model(ns, cfg):
    """FIBERTransformerSS for `cfg` (a dict):
      swin: dict(embed_dim, depths, num_heads, drop_path_rate) - patch 4, window = image_size / 32
      text: RobertaConfig kwargs (the stand-in for roberta-base's config.json)
      fiber: the official config dict entries FIBERTransformerSS reads
      queue: queue length of the small ITC queue buffers written into the checkpoint
    """
    st = ns.swin_transformer
    variant = "swin_fiber_reference"
    swin = cfg["swin"]

    def swin_variant(pretrained=False, **kwargs):
        kw = dict(patch_size=4, window_size=cfg["fiber"]["image_size"] // 32, embed_dim=swin["embed_dim"],
                  depths=tuple(swin["depths"]), num_heads=tuple(swin["num_heads"]),
                  drop_path_rate=swin.get("drop_path_rate", 0.1), **kwargs)
        default_cfg = dict(st.default_cfgs["swin_base_patch4_window12_384_in22k"])
        return st._create_swin_transformer(variant, pretrained=pretrained, default_cfg=default_cfg, **kw)

    setattr(st, variant, swin_variant)
    PRETRAINED_TEXT_CONFIGS[variant + "_text"] = cfg["text"]

    # Official bug: fiber_module sets swin_transformer.DIM_TXT, but the Swin code reads DIM_TEXT
    # (hard-coded 768). Setting DIM_TEXT ourselves makes the key/value projections of the fused
    # Swin blocks take the text width of this config.
    st.DIM_TEXT = cfg["fiber"]["input_text_embed_size"]

    fiber_cfg = dict(cfg["fiber"])
    fiber_cfg.update(vit=variant, tokenizer=variant + "_text", pretrained_vit=False, load_path="",
                     test_only=False)
    # ITC is switched off at construction: with it on, __init__ allocates 4096-entry queues
    # (4096 x 3 x H x W floats: 0.8 GB at 128 px, 7.2 GB at 384 px). temp and small queues are
    # registered below exactly as the official __init__ registers them.
    loss_names = dict(fiber_cfg["loss_names"])
    want_itc = loss_names.get("itc", 0) > 0
    fiber_cfg["loss_names"] = dict(loss_names, itc=0)
    model = ns.fiber_module.FIBERTransformerSS(fiber_cfg)
    if want_itc:
        q, hs, n, L = cfg["queue"], fiber_cfg["hidden_size"], fiber_cfg["image_size"], fiber_cfg["max_text_len"]
        g = torch.Generator().manual_seed(7)
        model.temp = nn.Parameter(torch.ones([]) * 0.07)
        model.queue_size = q
        model.register_buffer("image_queue", F.normalize(torch.randn(hs, q, generator=g), dim=0))
        model.register_buffer("text_queue", F.normalize(torch.randn(hs, q, generator=g), dim=0))
        # bf16-exact values: random floats do not compress, these pack to about half in git.
        model.register_buffer("image_input_queue", _bf16_exact(torch.randn(q, 3, n, n, generator=g)))
        model.register_buffer("text_input_queue", torch.randint(3, 100, (q, L), generator=g))
        model.register_buffer("text_input_mask_queue", torch.ones(q, L, dtype=torch.long))
        model.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        model.register_buffer("queue_total", torch.zeros(1, dtype=torch.long))
    model.hparams.config["loss_names"] = loss_names  # as saved by Lightning (itc on)
    model.eval()
    return model


def _bf16_exact(t):
    """Rounds to the nearest bfloat16 value (kept in t's dtype): weights that are exact in f32,
    f64, bf16, and whose low 16 bits are zero (git packs them to about half)."""
    return t.to(torch.bfloat16).to(t.dtype)


@torch.no_grad()
def randomize(model, seed, bf16_exact=True, gain=1.0):
    """Overwrites every parameter (not the official zero/0.02 init) so that every term matters:
    Linear/Conv weight N(0, gain^2/fan_in) (cross_modal_image_transform: gain 0.4), biases N(0, 0.1^2); LayerNorm weight 1 + N(0, 0.1^2),
    bias N(0, 0.1^2); embeddings N(0, 0.5^2); relative position tables N(0, 0.5^2); the gates
    alpha_i2t / alpha_t2i U(0.5, 1.5); mlm_score.bias N(0, 0.1^2); temp stays 0.07.
    rank_output shares its storage with row 1 of itm_score.fc (official tie) and is not drawn."""
    g = torch.Generator().manual_seed(seed)
    done = set()

    def fill(p, values):
        p.copy_(_bf16_exact(values) if bf16_exact else values)
        done.add(id(p))

    def normal(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float64).to(torch.float32) * std

    for name, m in model.named_modules():
        if name == "rank_output":
            continue
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            # The fused image projection reads the un-normalised stage-4 tokens (std ~2.7 here): a
            # smaller gain keeps the image pooler's tanh out of saturation.
            g_m = gain * (0.4 if name == "cross_modal_image_transform" else 1.0)
            fill(m.weight, normal(m.weight.shape, g_m / math.sqrt(fan_in)))
            if m.bias is not None:
                fill(m.bias, normal(m.bias.shape, 0.1))
        elif isinstance(m, nn.LayerNorm):
            fill(m.weight, 1.0 + normal(m.weight.shape, 0.1))
            fill(m.bias, normal(m.bias.shape, 0.1))
        elif isinstance(m, nn.Embedding):
            fill(m.weight, normal(m.weight.shape, 0.5))
    for name, p in model.named_parameters():
        if id(p) in done or name.startswith("rank_output.") or name == "temp":
            continue
        if name.endswith("relative_position_bias_table"):
            fill(p, normal(p.shape, 0.5))
        elif name.endswith("alpha_i2t") or name.endswith("alpha_t2i"):
            fill(p, 0.5 + torch.rand(p.shape, generator=g))
        elif name == "mlm_score.bias":
            fill(p, normal(p.shape, 0.1))
        else:
            raise RuntimeError(f"randomize: no rule for parameter {name} {tuple(p.shape)}")
    tied = model.rank_output.weight
    assert tied.untyped_storage().data_ptr() == model.itm_score.fc.weight.untyped_storage().data_ptr()
    assert torch.equal(tied, model.itm_score.fc.weight[1:]) and torch.equal(model.rank_output.bias,
                                                                            model.itm_score.fc.bias[1:])


# ---------------------------------------------------------------------------------------------
# Running the official infer() with hooks
# ---------------------------------------------------------------------------------------------
class Recorder:
    """Forward hooks that store module outputs as `<prefix>.<name>`; `prefix` is switched between
    the passes. Also records the exact inputs of chosen modules (args and kwargs)."""

    def __init__(self, model):
        self.model = model
        self.prefix = None
        self.out = {}
        self.calls = {}
        self.handles = []
        vit, text = model.vit_model, model.text_transformer
        self._hook(vit.patch_embed, "image.patch_embed")
        for s, layer in enumerate(vit.layers):
            for b, blk in enumerate(layer.blocks):
                self._hook(blk, f"image.layers.{s}.blocks.{b}")
            if layer.downsample is not None:
                self._hook(layer.downsample, f"image.layers.{s}.downsample")
        self._hook(vit.norm, "image.norm")
        self._hook(text.embeddings, "text.embeddings")
        for i, layer in enumerate(text.encoder.layer):
            self._hook(layer, f"text.layer.{i}", first=True)

    def _hook(self, module, name, first=False):
        def hook(mod, args, kwargs, output):
            if self.prefix is None:
                return
            y = output[0] if first else output
            key = f"{self.prefix}.{name}"
            assert key not in self.out, f"{key} recorded twice"
            self.out[key] = y.detach().clone()
            self.calls[key] = (tuple(a.detach().clone() if torch.is_tensor(a) else a for a in args),
                               {k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in kwargs.items()})
        self.handles.append(module.register_forward_hook(hook, with_kwargs=True))

    def remove(self):
        for h in self.handles:
            h.remove()


@torch.no_grad()
def run_reference(model, image, text_ids, text_masks, blocks=()):
    """The official passes, as the official code makes them:
      itc.image: infer(image_only=True)  (compute_itc / compute_itc_recall)
      itc.text:  infer(text_only=True)
      fused:     infer(batch)            (compute_itm / compute_itm_recall), then the heads
    Returns (outputs, block_fixtures). `blocks`: fused-path module names whose exact inputs and
    output are returned as block fixtures (see block_fixtures())."""
    rec = Recorder(model)
    batch = {"image": [image], "text_ids": text_ids, "text_labels": torch.full_like(text_ids, -100),
             "text_masks": text_masks}
    out = {}
    try:
        rec.prefix = "itc"
        ri = model.infer(batch, image_only=True)
        rt = model.infer(batch, text_only=True)
        rec.prefix = "fused"
        rf = model.infer(batch)
        rec.prefix = None
    finally:
        rec.remove()
    out.update(rec.out)
    out["itc.image.embedding"] = ri["cls_feats"]
    out["itc.text.embedding"] = rt["cls_feats"]
    out["fused.text_feats"] = rf["text_feats"]
    out["fused.image_feats"] = rf["image_feats"]
    out["fused.cls_feats"] = rf["cls_feats"]
    out["itm_logits"] = model.itm_score(rf["cls_feats"])
    out["rank_score"] = model.rank_output(rf["cls_feats"])
    out["mlm_logits"] = model.mlm_score(rf["text_feats"])
    # compute_itc_recall: scores = image_feats @ text_feats.t() (image rows, text columns).
    out["itc_similarity"] = ri["cls_feats"] @ rt["cls_feats"].t()
    fixtures = {name: rec.calls[f"fused.{name}"] for name in blocks}
    outs = {name: rec.out[f"fused.{name}"] for name in blocks}
    return out, fixtures, outs


def checkpoint_dict(model, hyper_parameters):
    """A Lightning 1.3-style checkpoint of the model (the state dict keeps the rank_output /
    itm_score.fc storage sharing, as torch.save of the official module does)."""
    return {"epoch": 0, "global_step": 0, "pytorch-lightning_version": "1.3.2",
            "state_dict": model.state_dict(), "hyper_parameters": hyper_parameters}


def plain_weights(model):
    """Official key -> contiguous tensor, queue buffers left out (for safetensors)."""
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items() if k not in QUEUE_KEYS}
