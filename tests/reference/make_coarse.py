#!/usr/bin/env python3
"""Writes tests/data/coarse/: a tiny FIBER coarse model (the C++ FiberTinyCoarse) with random
weights, run through the OFFICIAL microsoft/FIBER modules (extracted at run time from a git mirror;
see coarse_official.py), as a Lightning checkpoint (bfloat16 weights), inputs, outputs of
every block of every official pass, single fused-block fixtures, and a float64 run of the same.

    PY=$(cat /tmp/refenv.path)   # or /root/.cache/fiber-ref-venv/bin/python
    $PY tests/reference/make_coarse.py [--mirror /work/.mirror/microsoft+FIBER/repo] [--rev HEAD]

Fixed seeds: a re-run writes the same tensors (torch.save's zip may differ in metadata).
"""
import argparse
import copy
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coarse_official as co  # noqa: E402

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "coarse"))

# The C++ side's FiberTinyCoarse. Head dim 8 / 16 on the image side, 8 on the text side; small enough
# that the official-format .ckpt stays under 2 MB.
TINY = {
    "swin": {"embed_dim": 8, "depths": [2, 2, 18, 2], "num_heads": [1, 1, 2, 4], "drop_path_rate": 0.0},
    # The stand-in for roberta-base's config.json (RobertaModel.from_pretrained reads it).
    "text": {"vocab_size": 1000, "hidden_size": 16, "num_hidden_layers": 12, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 42, "type_vocab_size": 1,
             "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
             "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    # The official config dict entries FIBERTransformerSS reads (config.py names).
    "fiber": {"image_size": 128, "resolution_before": 128, "input_image_embed_size": 64,
              "input_text_embed_size": 16, "hidden_size": 16, "num_heads": 2, "num_layers": 12, "mlp_ratio": 4,
              "vocab_size": 1000, "max_text_len": 40, "drop_rate": 0.0, "num_fuse_block": 6, "itc_pooler": True,
              "vqav2_label_size": 3129,
              "loss_names": {"itm": 1, "itc": 1, "mlm": 1, "vqa": 0, "nlvr2": 0, "caption_mle": 0,
                             "caption_gold": 0, "caption_cider": 0}},
    "queue": 2,
}

# Fused-path modules whose exact inputs/outputs become single-block fixtures.
BLOCKS = {"s3b14": "image.layers.2.blocks.14", "t6": "text.layer.6",
          "s4b1": "image.layers.3.blocks.1", "t11": "text.layer.11"}


def make_inputs(seed=1234):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(2, 3, 128, 128, generator=g)
    ids = torch.ones(2, 12, dtype=torch.long)  # <pad> = 1
    ids[0, 0], ids[0, 1:11], ids[0, 11] = 0, torch.randint(3, 1000, (10,), generator=g), 2
    ids[1, 0], ids[1, 1:7], ids[1, 7] = 0, torch.randint(3, 1000, (6,), generator=g), 2  # 8 real tokens
    masks = (ids != 1).long()
    return image, ids, masks


def block_tensors(fixtures, outs):
    """Names the captured calls: block.<tag>.{in_image, in_text, text_mask, out}."""
    t = {}
    for tag, name in BLOCKS.items():
        args, kwargs = fixtures[name]
        if tag.startswith("s"):  # SwinTransformerBlock(x, y, y_mask)
            t[f"block.{tag}.in_image"], t[f"block.{tag}.in_text"], t[f"block.{tag}.text_mask"] = args
        else:  # RobertaLayer(hidden, mask, encoder_hidden_states=image[, last_norm=])
            t[f"block.{tag}.in_text"], t[f"block.{tag}.text_mask"] = args
            t[f"block.{tag}.in_image"] = kwargs["encoder_hidden_states"]
            assert kwargs.get("last_norm", True) == (tag != "t11")
        t[f"block.{tag}.out"] = outs[name]
    # Parallel update: each side of a pair reads the other's state entering the pair.
    for s, x in (("s3b14", "t6"), ("s4b1", "t11")):
        assert torch.equal(t[f"block.{s}.in_text"], t[f"block.{x}.in_text"])
        assert torch.equal(t[f"block.{s}.in_image"], t[f"block.{x}.in_image"])
    return t


@torch.no_grad()
def blocks_in_f64(model64, t):
    """Each block fixture's module in float64 applied to the float32 inputs (upcast exactly)."""
    vit, text = model64.vit_model, model64.text_transformer
    r = {}
    for tag, (stage, idx) in (("s3b14", (2, 14)), ("s4b1", (3, 1))):
        blk = vit.layers[stage].blocks[idx]
        r[f"block.{tag}.out"] = blk(t[f"block.{tag}.in_image"].double(), t[f"block.{tag}.in_text"].double(),
                                    t[f"block.{tag}.text_mask"].double())
    for tag, idx in (("t6", 6), ("t11", 11)):
        r[f"block.{tag}.out"] = text.encoder.layer[idx](
            t[f"block.{tag}.in_text"].double(), t[f"block.{tag}.text_mask"].double(),
            encoder_hidden_states=t[f"block.{tag}.in_image"].double(), last_norm=(tag != "t11"))[0]
    return r


def shape(t):
    return "[" + ", ".join(str(d) for d in t.shape) + "]"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", default=co.DEFAULT_MIRROR, help="microsoft/FIBER git mirror (bare is fine)")
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    ns = co.load_official(args.mirror, args.rev)
    model = co.build_model(ns, TINY)
    co.randomize(model, seed=20261204)
    image, ids, masks = make_inputs()

    out, fixtures, outs = co.run_reference(model, image, ids, masks, blocks=BLOCKS.values())
    blocks = block_tensors(fixtures, outs)

    model64 = copy.deepcopy(model).double()
    out64, _, _ = co.run_reference(model64, image.double(), ids, masks)
    blocks64 = blocks_in_f64(model64, blocks)

    os.makedirs(args.out, exist_ok=True)
    p = lambda name: os.path.join(args.out, name)  # noqa: E731
    meta = {"official_commit": ns.commit, "config": json.dumps(TINY)}
    save_file({"image": image, "text_ids": ids, "text_masks": masks}, p("tiny_inputs.safetensors"), metadata=meta)
    f32 = {k: v.float().contiguous().clone() for k, v in {**out, **blocks}.items()}
    save_file(f32, p("tiny_outputs.safetensors"), metadata=meta)
    f64_keys = ["itc.image.embedding", "itc.text.embedding", "itc_similarity", "fused.text_feats",
                "fused.image_feats", "fused.cls_feats", "itm_logits", "rank_score", "mlm_logits"]
    f64 = {k: out64[k].contiguous().clone() for k in f64_keys}
    f64.update({k: v.contiguous().clone() for k, v in blocks64.items()})
    save_file(f64, p("tiny_outputs_f64.safetensors"), metadata=meta)

    # The checkpoint stores the weights as bfloat16: they are bf16-exact (randomize rounds them), so
    # the outputs above are what these weights give in float32, the file stays small, and the
    # C++ loader's bf16 -> float32 path is exercised. The rank_output tie is restored after the cast
    # (Module.to converts each parameter on its own).
    hp = {"config": copy.deepcopy(model.hparams.config)}
    low = copy.deepcopy(model).to(torch.bfloat16)
    low.rank_output.weight.data = low.itm_score.fc.weight.data[1:, :]
    low.rank_output.bias.data = low.itm_score.fc.bias.data[1:]
    ckpt = co.checkpoint_dict(low, hp)
    torch.save(ckpt, p("tiny_coarse.ckpt"))

    # Read everything back: the checkpoint loads into a fresh official model and reproduces the
    # outputs.
    loaded = torch.load(p("tiny_coarse.ckpt"), map_location="cpu", weights_only=True)
    sd = loaded["state_dict"]
    assert sd["rank_output.weight"].untyped_storage().data_ptr() == \
        sd["itm_score.fc.weight"].untyped_storage().data_ptr(), "tie lost in the checkpoint"
    fresh = co.build_model(ns, TINY)
    fresh.load_state_dict(sd, strict=True)  # in-place copies: fresh keeps its own rank_output tie
    again, _, _ = co.run_reference(fresh, image, ids, masks)
    for k in out:
        assert torch.equal(again[k], out[k]), k
    # Figures for the README: float32 vs float64 of the same script.
    diffs = {}
    for k in out:
        d = (out[k].double() - out64[k]).abs()
        diffs[k] = (d.max().item(), out64[k].abs().max().item())
    bdiffs = {k: ((blocks[k].double() - blocks64[k]).abs().max().item(), blocks64[k].abs().max().item())
              for k in blocks64}
    write_readme(args.out, ns.commit, ckpt, out, blocks, f64, diffs, bdiffs, image, ids, masks)
    print("wrote", args.out)
    for k in ["itc.image.embedding", "itc.text.embedding", "itc_similarity", "fused.cls_feats", "itm_logits",
              "rank_score", "mlm_logits"]:
        print(f"  {k:24s} max|f32-f64| {diffs[k][0]:.3e}  (max|x| {diffs[k][1]:.3g})")


def write_readme(out_dir, commit, ckpt, out, blocks, f64, diffs, bdiffs, image, ids, masks):
    sd = ckpt["state_dict"]
    L = []
    w = L.append
    w("# Coarse FIBER fixtures (tiny configuration, official code)\n")
    w("Written by `tests/reference/make_coarse.py`, which runs the OFFICIAL microsoft/FIBER coarse modules")
    w(f"(commit `{commit}`: `coarse_grained/fiber/modules/` swin_transformer, roberta, heads, objectives,")
    w("fiber_module, swin_helpers, dist_utils, extracted at run time from the git mirror, not committed) on a")
    w("tiny configuration with random weights. Regenerate with")
    w("```\nPY=$(cat /tmp/refenv.path)   # or /root/.cache/fiber-ref-venv/bin/python (torch, transformers, safetensors)")
    w("$PY tests/reference/make_coarse.py --mirror /work/.mirror/microsoft+FIBER/repo\n```")
    w("Fixed seeds: the tensors come out the same on every run (CPU, one thread).\n")
    w("## Files\n")
    for f in sorted(os.listdir(out_dir)):
        if f != "README.md":
            w(f"- `{f}`: {os.path.getsize(os.path.join(out_dir, f)) / 1e6:.2f} MB")
    w("")
    w("- `tiny_coarse.ckpt`: PyTorch Lightning 1.3-style checkpoint, `torch.save` of `{epoch: 0, global_step: 0,")
    w("  \"pytorch-lightning_version\": \"1.3.2\", state_dict, hyper_parameters: {config: {...}}}`. The state dict is")
    w("  `FIBERTransformerSS.state_dict()`: keys without prefix, root parameters/buffers first (`temp`, then the")
    w("  ITC queue buffers, which a loader must skip), buffers `relative_position_index`, `attn_mask` (shifted")
    w("  blocks only: unshifted blocks register `attn_mask = None`, which is not saved) and")
    w("  `text_transformer.embeddings.position_ids`. `rank_output.weight` [1, 32] / `rank_output.bias` [1] are")
    w("  views into the storage of `itm_score.fc.weight` / `.bias` (row 1, storage offset 32 / 1), exactly as the")
    w("  official `self.rank_output.weight.data = self.itm_score.fc.weight.data[1:, :]` leaves them.")
    w("  Floating tensors are stored as bfloat16 (the random weights are bf16-exact, so the float32 outputs")
    w("  below are exactly what these weights give; a loader converts them to its own type).")
    w("- `tiny_inputs.safetensors`: `image` [2, 3, 128, 128] f32 (N(0,1), as normalised pixels), `text_ids` [2, 12]")
    w("  int64 (`<s>`=0 ... `</s>`=2; row 1 has 8 real tokens then `<pad>`=1), `text_masks` [2, 12] int64 (1/0).")
    w(f"  text_ids = {ids.tolist()}")
    w("- `tiny_outputs.safetensors`: float32 outputs of the float32 run (names below).")
    w("- `tiny_outputs_f64.safetensors`: float64 outputs of the SAME script with the model and image cast to float64")
    w("  (the weights are the same numbers: they are bf16-exact, see below) for the final outputs, and each block")
    w("  fixture's module in float64 applied to the float32 block inputs (so `block.*.out` there is the exact")
    w("  answer for the stored inputs).\n")
    w("## Configuration (C++ `FiberTinyCoarse`)\n")
    w("- Swin: image 128, patch 4, in_chans 3, embed_dim 8, depths (2, 2, 18, 2), heads (1, 1, 2, 4) (head dims 8, 16, 16, 16),")
    w("  window 128/32 = 4, mlp_ratio 4, qkv_bias, no APE, patch norm, no dropout/drop-path, eval mode. Feature maps")
    w("  32x32, 16x16, 8x8, 4x4; blocks with odd index shift by 2 in stages 1-3; stage 4 (4x4 = window) never shifts")
    w("  (`SwinTransformerBlock` sets shift 0 and window = min(resolution)). Masked logits use -100.")
    w("- Text (RoBERTa, post-LN): vocab 1000, hidden 16, 2 heads (head dim 8), 12 layers, FFN 64, GELU (erf), 42")
    w("  positions, type_vocab_size 1, pad id 1, LayerNorm eps 1e-5. Position ids = cumsum(non-pad) * non-pad + 1.")
    w("  Additive mask (1 - m) * -10000 (transformers 4.6 `get_extended_attention_mask`, in the model's dtype).")
    w("- Fusion: num_fuse_block 6, input_text_embed_size 16, input_image_embed_size 64, hidden_size 16.")
    w("  Stage-3 blocks 14..17 (dim 32, 2 heads) pair with text layers 6..9 (cross-attention key/value 32 -> 16);")
    w("  stage-4 blocks 0, 1 (dim 64, 4 heads) pair with text layers 10, 11 (key/value 64 -> 16). Layer 11 on the")
    w("  fused path skips its output LayerNorm (`last_norm=(blk_cnt == 0)`).")
    w("- Heads: itc_pooler True; poolers Linear(16, 16) + tanh; ITM Linear(32, 2); rank_output tied to ITM row 1;")
    w("  MLM: BertPredictionHeadTransform (Linear(16, 16), GELU erf, LayerNorm eps **1e-12**: FIBERTransformerSS")
    w("  builds its `bert_config = RobertaConfig(...)` without layer_norm_eps, so the BertConfig default 1e-12")
    w("  applies, not roberta's 1e-5) -> decoder Linear(16, 1000, no bias) + `mlm_score.bias`. temp = 0.07.")
    w("- Random weights (`coarse_official.randomize`, seed 20261204), every value rounded to bfloat16 (so f32, f64")
    w("  and bf16 hold the same numbers), as normal(mean, std): Linear/Conv weights normal(0, 1/sqrt(fan_in))")
    w("  (0.4/sqrt(fan_in) for `cross_modal_image_transform`, so that the image pooler's tanh is not saturated),")
    w("  biases normal(0, 0.1), LayerNorm weight normal(1, 0.1), bias normal(0, 0.1), embeddings normal(0, 0.5),")
    w("  relative position tables normal(0, 0.5), gates alpha_i2t / alpha_t2i uniform(0.5, 1.5), mlm bias")
    w("  normal(0, 0.1); temp = 0.07 exactly. The FIBER `config` dict is in the checkpoint's hyper_parameters.\n")
    w("## How the reference runs\n")
    w("`FIBERTransformerSS(config)` is instantiated (official `__init__`), then the official `infer()` is called")
    w("three times, as the official objectives call it: `infer(batch, image_only=True)` (ITC image),")
    w("`infer(batch, text_only=True)` (ITC text), `infer(batch)` (fused; ITM / MLM / ITM-recall). Forward hooks")
    w("record module outputs; nothing of the orchestration is re-implemented. `itm_logits = itm_score(cls_feats)`,")
    w("`rank_score = rank_output(cls_feats)`, `mlm_logits = mlm_score(text_feats)` (no masking of the ids),")
    w("`itc_similarity = image_emb @ text_emb.T` (compute_itc_recall: image rows, text columns; ITC logits are")
    w("this divided by temp).\n")
    w("Stand-ins (the venv has timm 1.0 / transformers 5, the code pins timm 0.4.12 / transformers 4.6 /")
    w("pytorch_lightning 1.3): timm's PatchEmbed, Mlp, DropPath, to_2tuple, trunc_normal_ rewritten to 0.4.12")
    w("semantics; a LightningModule base; transformers' PreTrainedModel with 4.6's -10000 mask and a")
    w("`from_pretrained` that builds the tiny text config; no-op docstring decorators; an empty fiber_utils.")
    w("The queues are registered after construction (the official `__init__` would allocate 4096 x 3 x 128 x 128")
    w("floats); `temp` and the queue buffers have the official names, dtypes and layout (length 4 here).\n")
    w("Cross-checks (run once by hand, not by the script): the text-only path equals transformers 5.23's own")
    w("`RobertaModel` loaded with the `text_transformer.*` weights to 3e-6 on the real tokens (it masks with")
    w("finfo.min instead of -10000), and `itc.image.norm` equals timm 1.0.31's `SwinTransformer` (weights through")
    w("its `checkpoint_filter_fn`) bit for bit.\n")
    w("## Official-code quirks found (and what the script does)\n")
    w("1. `fiber_module.py` sets `swin_transformer.DIM_TXT`, but `swin_transformer.py` reads `DIM_TEXT` (hard-coded")
    w("   768): the text width of the fused Swin blocks' `qkv_text_i2t` is always 768. Harmless at roberta-base size;")
    w("   for the tiny model the script sets `swin_transformer.DIM_TEXT = 16` itself.")
    w("2. The fusion schedule is hard-coded for 12 text layers and a stage-3 depth of 18: Swin creates the i2t")
    w("   modules for stage-3 blocks `i >= 20 - NUM_FUSE_BLOCK` (= 14), RoBERTa creates `crossattention_t2i` for")
    w("   `layer_index >= 12 - NUM_FUSE_BLOCK` with key/value width DIM_IMG/2 below layer 10 and DIM_IMG from 10 on,")
    w("   and `infer()` pairs stage-3 block b >= 8 + (12 - 6) with text layer b - 8 and stage-4 block b with text")
    w("   layer b + 10.")
    w("3. Layer 11 on the fused path skips its output LayerNorm (`last_norm=(blk_cnt == 0)`; text-only path keeps it).")
    w("4. `alpha_t2i` exists in all 12 text layers (only 6..11 are used); `crossattention_t2i.output.LayerNorm`")
    w("   exists and is never applied (RobertaSelfOutput is dense + dropout only); `text_transformer.pooler`,")
    w("   `vit_model.norm` on the fused path, and `vit_model.avgpool` are unused. The fused path has no final Swin")
    w("   norm; the ITC image path has it.")
    w("5. The text->image cross-attention gets no mask (`encoder_attention_mask` is None); the image->text")
    w("   attention in the Swin blocks adds the -10000 text mask. Text cross-attention scale is 1/sqrt(8); Swin i2t")
    w("   scale is head_dim^-0.5 = 1/4.")
    w("6. The fused Swin block's i2t query is `qkv_i2t(norm_i2t_i(x))` where x is already `proj(W-MSA(LN1(x)))`")
    w("   (computed in the shifted window layout; k/v repeated for every window).")
    w("7. MLMHead LayerNorm eps is 1e-12 (see above), not the text model's 1e-5.")
    w("8. `rank_output` shares storage with `itm_score.fc` row 1 (stored [1, 32]).")
    w("9. `RobertaEmbeddings` creates `position_embeddings` twice, the second time with padding_idx=1 (that only")
    w("   affects training); here row 1 is random like the rest, and it is only read at pad positions.")
    w("10. The i2t image->text attention runs inside the (shifted) window layout but is per token, so windowing")
    w("   does not change it; the text mask [B, 1, 1, L] is repeated per window in batch-major window order.\n")
    w("## Tolerances (float32 vs float64 of the same script)\n")
    w("max |f32 - f64| over each tensor, and max |f64| for scale. The C++ float32 model can expect to match the")
    w("float32 fixtures to a small multiple of these (its own rounding differs from PyTorch's as much as")
    w("PyTorch's float32 differs from float64). Suggested: final outputs (embeddings, similarity, ITM, rank,")
    w("cls_feats) atol 1e-5; mlm_logits and text layers atol 2e-5; deep Swin blocks (values up to 20) atol 1e-4")
    w("or rtol 1e-5 of the tensor's max. A single block against `tiny_outputs_f64` can be held to ~1e-5.")
    w("The final outputs are also in `tiny_outputs_f64.safetensors`.\n")
    w("| output | max abs diff | max abs value |\n|---|---|---|")
    for k in ["itc.image.patch_embed", "itc.image.layers.2.blocks.17", "itc.image.norm", "itc.image.embedding",
              "itc.text.layer.11", "itc.text.embedding", "itc_similarity", "fused.image.layers.2.blocks.13",
              "fused.image.layers.2.blocks.17", "fused.image.layers.3.blocks.1", "fused.text.layer.9",
              "fused.text.layer.11", "fused.text_feats", "fused.image_feats", "fused.cls_feats", "itm_logits",
              "rank_score", "mlm_logits"]:
        w(f"| `{k}` | {diffs[k][0]:.2e} | {diffs[k][1]:.3g} |")
    w("")
    w("Single blocks (float32 run vs the float64 module on the same float32 inputs):\n")
    w("| block | max abs diff | max abs value |\n|---|---|---|")
    for k, (d, m) in bdiffs.items():
        w(f"| `{k}` | {d:.2e} | {m:.3g} |")
    w("")
    w("## Output tensors (`tiny_outputs.safetensors`, float32)\n")
    w("Prefixes: `itc.image.*` = `infer(image_only=True)`, `itc.text.*` = `infer(text_only=True)`, `fused.*` =")
    w("`infer(batch)`. `*.image.layers.{s}.blocks.{b}` is the output of Swin stage s block b ([B, L, C]),")
    w("`*.image.layers.{s}.downsample` that of the PatchMerging after stage s, `*.text.layer.{i}` that of text")
    w("layer i (on the fused path, layers 6..11 are the fused ones and layer 11 has no output LayerNorm),")
    w("`*.text.embeddings` the RoBERTa embedding output. `itc.image.norm` is the final Swin norm (ITC only).\n")
    w("| name | shape |\n|---|---|")
    for k in out:
        w(f"| `{k}` | {shape(out[k])} |")
    w("")
    w("Single-block fixtures (same file). `s3b14` = stage-3 block 14 (fused with text layer 6), `t6` = text layer")
    w("6, `s4b1` = stage-4 block 1, `t11` = text layer 11 (`last_norm=False`), all from the fused pass. `in_image`")
    w("/ `in_text` are the tensors the module received (a pair's two modules read the same ones: the updates are")
    w("parallel), `text_mask` the additive mask [B, 1, 1, L] it received, `out` its output (first element for text")
    w("layers).\n")
    w("| name | shape |\n|---|---|")
    for k in blocks:
        w(f"| `{k}` | {shape(blocks[k])} |")
    w("")
    w("`tiny_outputs_f64.safetensors` (float64): " + ", ".join(f"`{k}`" for k in f64) + ".\n")
    w("## Checkpoint keys (`tiny_coarse.ckpt` state_dict)\n")
    w("| key | shape | dtype |\n|---|---|---|")
    for k, v in sd.items():
        w(f"| `{k}` | {shape(v)} | {str(v.dtype).replace('torch.', '')} |")
    w("")
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
