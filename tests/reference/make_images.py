"""Writes the image fixtures in tests/data/images/ (and the fuzz seeds in fuzz/corpus/).

What Pillow and torchvision compute is the reference: decoding with
`Image.open(p).convert("RGB")`, `Image.resize` with BICUBIC and BILINEAR, the coarse
preprocessing (torchvision Resize((s, s), BICUBIC), ToTensor, Normalize) and the fine-grained
one (maskrcnn_benchmark Resize(min_size, max_size), ToTensor, Normalize in BGR 0-255, padding
to a multiple of 32). Everything comes from fixed seeds, so re-running this script rewrites the
same files:

    /root/.cache/fiber-ref-venv/bin/python tests/reference/make_images.py

Files (all pixels raw, row-major, no header; sizes are in manifest.json):
  decode/<name>.png|.jpg   the encoded file; decode/<name>.rgb its Pillow RGB pixels [H, W, 3]
  resize/<input>.rgb       resize inputs [H, W, 3]; resize/<input>_<w>x<h>_<filter>.rgb outputs
  preprocess/*.f32         float32 little-endian [C, H, W] outputs of the two pipelines
Some PNGs are written by the small encoder below (Pillow cannot write 16-bit RGB, sub-byte grey
or palette depths with chosen filters, or interlaced PNGs); Pillow decodes them all.
"""
from __future__ import annotations

import io
import json
import pathlib
import shutil
import struct
import warnings
import zlib

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image, features
from torchvision.transforms import functional as TF

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "images"
CORPUS = ROOT / "fuzz" / "corpus"


# ----------------------------------------------------------------------------- source images
def smooth_image(width: int, height: int, channels: int, seed: int, depth: int = 8) -> np.ndarray:
    """Gradients, a few waves and some noise: compressible, but every value range is used."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    top = (1 << depth) - 1
    planes = []
    for c in range(channels):
        fx, fy, phase = rng.uniform(0.05, 0.6), rng.uniform(0.05, 0.6), rng.uniform(0, 6.3)
        wave = 0.5 + 0.35 * np.sin(fx * x + fy * y + phase)
        ramp = (x / max(width - 1, 1) * rng.uniform(-0.3, 0.3) + y / max(height - 1, 1) * rng.uniform(-0.3, 0.3))
        noise = rng.normal(0, 0.08, size=(height, width))
        planes.append(np.clip(wave + ramp + noise, 0, 1) * top)
    img = np.rint(np.stack(planes, axis=-1))
    # Make sure the extremes occur: they are where clipping and rounding go wrong.
    img.flat[0] = 0
    img.flat[-1] = top
    dtype = np.uint16 if depth == 16 else np.uint8
    return img.astype(dtype)


# ----------------------------------------------------------------------------- a PNG writer
def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples: np.ndarray, depth: int) -> bytes:
    """samples: [W, C] unsigned ints -> the PNG row bytes (MSB first below 8 bits, big-endian 16)."""
    flat = samples.reshape(-1).astype(np.uint32)
    if depth == 16:
        return flat.astype(">u2").tobytes()
    if depth == 8:
        return flat.astype(np.uint8).tobytes()
    per_byte = 8 // depth
    out = bytearray((len(flat) + per_byte - 1) // per_byte)
    for i, v in enumerate(flat):
        out[i // per_byte] |= int(v) << (8 - depth * (i % per_byte + 1))
    return bytes(out)


def paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray([kind])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - pred) & 0xFF)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def encode_png(samples: np.ndarray, color_type: int, depth: int, *, interlace: bool = False,
               filters=(0,), palette: bytes | None = None, trns: bytes | None = None,
               extra_before_idat: list[tuple[bytes, bytes]] = (), idat_pieces: int = 1) -> bytes:
    """samples: [H, W, C]. filters: cycled over the rows of each pass."""
    height, width, channels = samples.shape
    bpp = max(1, channels * depth // 8)
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    row_index = 0
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = bytes(len(pack_row(sub[0], depth)))
        for r in sub:
            row = pack_row(r, depth)
            raw += filter_row(filters[row_index % len(filters)], row, prev, bpp)
            prev = row
            row_index += 1
    data = zlib.compress(bytes(raw), 9)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    for kind, payload in extra_before_idat:
        out += png_chunk(kind, payload)
    if palette is not None:
        out += png_chunk(b"PLTE", palette)
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    step = max(1, -(-len(data) // idat_pieces))
    for i in range(0, len(data), step):
        out += png_chunk(b"IDAT", data[i:i + step])
    return out + png_chunk(b"IEND", b"")


# ----------------------------------------------------------------------------- decode fixtures
decode_entries: list[dict] = []


def add_decode(name: str, data: bytes, kind: str, what: str) -> None:
    ext = "png" if kind == "png" else "jpg"
    path = OUT / "decode" / f"{name}.{ext}"
    path.write_bytes(data)
    with Image.open(path) as im:
        source_mode = im.mode
        rgb = im.convert("RGB")
    pixels = np.asarray(rgb, dtype=np.uint8)
    (OUT / "decode" / f"{name}.rgb").write_bytes(pixels.tobytes())
    decode_entries.append({"name": name, "kind": kind, "file": f"decode/{name}.{ext}",
                           "expected": f"decode/{name}.rgb", "width": rgb.width,
                           "height": rgb.height, "pillow_mode": source_mode, "what": what})


def pillow_bytes(im: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def make_png_fixtures() -> None:
    rgb = smooth_image(23, 17, 3, 1)
    add_decode("png_rgb8", pillow_bytes(Image.fromarray(rgb, "RGB"), "PNG"), "png", "RGB, 8 bit (Pillow)")
    rgba = smooth_image(19, 13, 4, 2)
    add_decode("png_rgba8", pillow_bytes(Image.fromarray(rgba, "RGBA"), "PNG"), "png",
               "RGBA, 8 bit: alpha dropped, not composited")
    grey = smooth_image(21, 11, 1, 3)[..., 0]
    add_decode("png_l8", pillow_bytes(Image.fromarray(grey, "L"), "PNG"), "png", "grey, 8 bit")
    la = smooth_image(13, 9, 2, 4)
    add_decode("png_la8", pillow_bytes(Image.fromarray(la, "LA"), "PNG"), "png", "grey + alpha, 8 bit")
    bits = smooth_image(29, 7, 1, 5)[..., 0] > 127
    add_decode("png_1bit", pillow_bytes(Image.fromarray(bits), "PNG"), "png", "1-bit (mode 1)")

    # Palette images, from Pillow: 8-bit indices, with and without transparency.
    pal = Image.fromarray(smooth_image(25, 15, 3, 6), "RGB").quantize(200)
    add_decode("png_p8", pillow_bytes(pal, "PNG"), "png", "palette, 8 bit, 200 colours")
    add_decode("png_p8_trns_index", pillow_bytes(pal, "PNG", transparency=7), "png",
               "palette with one transparent index")
    # Palette with several alpha values (tRNS as bytes), 2- and 4-bit indices, an index past the
    # end of a short PLTE (Pillow's palette is zero there), all filter types.
    rng = np.random.default_rng(7)
    palette = rng.integers(0, 256, size=(16, 3), dtype=np.uint8)
    idx4 = rng.integers(0, 16, size=(9, 14, 1))
    add_decode("png_p4_trns_bytes",
               encode_png(idx4, 3, 4, palette=palette.tobytes(), trns=bytes(range(0, 160, 10)), filters=(0, 1, 2, 3, 4)),
               "png", "palette, 4 bit, tRNS with 16 alpha values")
    idx2 = rng.integers(0, 4, size=(5, 11, 1))
    add_decode("png_p2", encode_png(idx2, 3, 2, palette=palette[:4].tobytes(), filters=(4, 3)), "png", "palette, 2 bit")
    idx1 = rng.integers(0, 2, size=(6, 9, 1))
    add_decode("png_p1", encode_png(idx1, 3, 1, palette=palette[:2].tobytes()), "png", "palette, 1 bit")
    idx8 = rng.integers(0, 12, size=(4, 10, 1))
    add_decode("png_p8_short_plte", encode_png(idx8, 3, 8, palette=palette[:8].tobytes()), "png",
               "palette, indices 8..11 past an 8-entry PLTE")
    # Sub-byte grey, grey and RGB with tRNS colour keys.
    add_decode("png_l2", encode_png(rng.integers(0, 4, size=(7, 13, 1)), 0, 2, filters=(1, 2)), "png", "grey, 2 bit")
    add_decode("png_l4", encode_png(rng.integers(0, 16, size=(8, 5, 1)), 0, 4, filters=(3,)), "png", "grey, 4 bit")
    add_decode("png_l8_trns", encode_png(grey[..., None], 0, 8, trns=struct.pack(">H", int(grey[3, 3]))), "png",
               "grey with a tRNS colour key")
    add_decode("png_rgb8_trns", encode_png(rgb, 2, 8, trns=struct.pack(">HHH", *map(int, rgb[2, 2])), filters=(4,)),
               "png", "RGB with a tRNS colour key")
    # 16-bit: grey (Pillow mode I;16, clipped to 255 by convert), grey+alpha, RGB, RGBA.
    g16 = smooth_image(17, 12, 1, 8, depth=16)
    g16[0, :12, 0] = [0, 1, 100, 254, 255, 256, 257, 511, 1000, 4096, 65534, 65535]
    add_decode("png_i16", pillow_bytes(Image.fromarray(np.ascontiguousarray(g16[..., 0])), "PNG"), "png",
               "grey, 16 bit (mode I;16): values above 255 become 255")
    add_decode("png_l16_low", encode_png(np.minimum(g16, 300), 0, 16, filters=(2,)), "png",
               "grey, 16 bit, values 0..300")
    add_decode("png_la16", encode_png(smooth_image(11, 6, 2, 9, depth=16), 4, 16, filters=(1,)), "png",
               "grey + alpha, 16 bit: high bytes")
    add_decode("png_rgb16", encode_png(smooth_image(15, 10, 3, 10, depth=16), 2, 16, filters=(0, 1, 2, 3, 4)), "png",
               "RGB, 16 bit: high bytes")
    add_decode("png_rgba16", encode_png(smooth_image(9, 8, 4, 11, depth=16), 6, 16, filters=(4,)), "png",
               "RGBA, 16 bit")
    # Interlaced (Adam7), including sizes where some passes are empty.
    add_decode("png_rgb8_interlaced", encode_png(smooth_image(33, 17, 3, 12), 2, 8, interlace=True, filters=(0, 1, 2, 3, 4)),
               "png", "RGB, interlaced")
    add_decode("png_rgba16_interlaced", encode_png(smooth_image(10, 9, 4, 13, depth=16), 6, 16, interlace=True, filters=(4, 1)),
               "png", "RGBA 16 bit, interlaced")
    add_decode("png_p4_interlaced", encode_png(rng.integers(0, 16, size=(11, 7, 1)), 3, 4, interlace=True,
                                               palette=palette.tobytes(), filters=(2, 3)),
               "png", "palette 4 bit, interlaced")
    add_decode("png_l1_interlaced_3x7", encode_png(rng.integers(0, 2, size=(7, 3, 1)), 0, 1, interlace=True), "png",
               "grey 1 bit, interlaced, 3x7")
    add_decode("png_rgb8_interlaced_1x1", encode_png(smooth_image(1, 1, 3, 14), 2, 8, interlace=True), "png",
               "RGB, interlaced, 1x1")
    # Odd sizes.
    add_decode("png_rgb8_1x9", pillow_bytes(Image.fromarray(smooth_image(1, 9, 3, 15), "RGB"), "PNG"), "png", "1x9")
    add_decode("png_rgb8_9x1", pillow_bytes(Image.fromarray(smooth_image(9, 1, 3, 16), "RGB"), "PNG"), "png", "9x1")
    add_decode("png_rgb8_7x3", pillow_bytes(Image.fromarray(smooth_image(7, 3, 3, 17), "RGB"), "PNG"), "png", "7x3")
    # Ancillary chunks (gamma, sRGB, text) that must not change the pixels; IDAT split in pieces.
    extras = [(b"gAMA", struct.pack(">I", 100000)), (b"sRGB", b"\x00"), (b"tEXt", b"Comment\x00fiber fixture")]
    add_decode("png_rgb8_chunks", encode_png(smooth_image(12, 10, 3, 18), 2, 8, extra_before_idat=extras, idat_pieces=5),
               "png", "gAMA/sRGB/tEXt chunks ignored, IDAT in 5 pieces")


def make_jpeg_fixtures() -> None:
    base = Image.fromarray(smooth_image(37, 29, 3, 20), "RGB")
    add_decode("jpeg_420", pillow_bytes(base, "JPEG", quality=85), "jpeg", "baseline, 4:2:0 (Pillow default)")
    add_decode("jpeg_422", pillow_bytes(base, "JPEG", quality=85, subsampling="4:2:2"), "jpeg", "baseline, 4:2:2")
    add_decode("jpeg_444", pillow_bytes(base, "JPEG", quality=85, subsampling="4:4:4"), "jpeg", "baseline, 4:4:4")
    add_decode("jpeg_progressive", pillow_bytes(base, "JPEG", quality=80, progressive=True), "jpeg", "progressive, 4:2:0")
    add_decode("jpeg_optimized_q95", pillow_bytes(base, "JPEG", quality=95, optimize=True), "jpeg",
               "optimised Huffman tables, quality 95")
    add_decode("jpeg_restart", pillow_bytes(base, "JPEG", quality=70, restart_marker_blocks=2), "jpeg",
               "restart markers every 2 MCUs")
    grey = Image.fromarray(smooth_image(31, 23, 1, 21)[..., 0], "L")
    add_decode("jpeg_grey", pillow_bytes(grey, "JPEG", quality=85), "jpeg", "greyscale")
    add_decode("jpeg_grey_progressive", pillow_bytes(grey, "JPEG", quality=85, progressive=True), "jpeg",
               "greyscale, progressive")
    cmyk = Image.fromarray(smooth_image(27, 19, 4, 22), "CMYK")
    add_decode("jpeg_cmyk", pillow_bytes(cmyk, "JPEG", quality=90), "jpeg", "CMYK with Adobe marker (inverted)")
    add_decode("jpeg_1x17", pillow_bytes(Image.fromarray(smooth_image(1, 17, 3, 23), "RGB"), "JPEG", quality=90), "jpeg", "1x17")
    add_decode("jpeg_17x1", pillow_bytes(Image.fromarray(smooth_image(17, 1, 3, 24), "RGB"), "JPEG", quality=90), "jpeg", "17x1")
    add_decode("jpeg_7x3", pillow_bytes(Image.fromarray(smooth_image(7, 3, 3, 25), "RGB"), "JPEG", quality=90), "jpeg", "7x3")
    add_decode("jpeg_1x1", pillow_bytes(Image.fromarray(smooth_image(1, 1, 3, 26), "RGB"), "JPEG"), "jpeg", "1x1")
    # EXIF orientation 6 (rotate 90): must NOT be applied (the official pipeline does not).
    exif = Image.Exif()
    exif[0x0112] = 6
    add_decode("jpeg_exif_rotated", pillow_bytes(Image.fromarray(smooth_image(24, 16, 3, 27), "RGB"), "JPEG",
                                                 quality=85, exif=exif.tobytes()),
               "jpeg", "EXIF orientation 6, not applied")
    add_decode("jpeg_160x120", pillow_bytes(Image.fromarray(smooth_image(160, 120, 3, 28), "RGB"), "JPEG", quality=75),
               "jpeg", "larger 4:2:0 image, quality 75")


# ----------------------------------------------------------------------------- resize fixtures
resize_entries: list[dict] = []
RESIZE_INPUTS = [(1, 1), (1, 7), (7, 1), (7, 3), (3, 7), (2, 2), (16, 16), (31, 17), (64, 48), (97, 61), (200, 150)]
FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def output_sizes(w: int, h: int) -> list[tuple[int, int]]:
    sizes = {(1, 1), (w, h), (w * 2, h * 2), (w * 3 + 1, h + 2), (max(1, w // 2), max(1, h // 2)),
             (max(1, w // 3), max(1, (h * 2) // 7)), (max(1, (w * 10) // 73), max(1, (h * 10) // 73)),
             (w + 5, max(1, h - 1)), (max(1, w - 1), h * 3), (13, 9), (1, h), (w, 1)}
    return sorted(s for s in sizes if s[0] * s[1] <= 160 * 160)


def make_resize_fixtures() -> None:
    for n, (w, h) in enumerate(RESIZE_INPUTS):
        src = smooth_image(w, h, 3, 100 + n)
        stem = f"in_{w}x{h}"
        (OUT / "resize" / f"{stem}.rgb").write_bytes(src.tobytes())
        im = Image.fromarray(src, "RGB")
        for ow, oh in output_sizes(w, h):
            for fname, f in FILTERS.items():
                out = np.asarray(im.resize((ow, oh), f), dtype=np.uint8)
                name = f"{stem}_{ow}x{oh}_{fname}.rgb"
                (OUT / "resize" / name).write_bytes(out.tobytes())
                resize_entries.append({"input": f"resize/{stem}.rgb", "in_width": w, "in_height": h,
                                       "width": ow, "height": oh, "filter": fname, "expected": f"resize/{name}"})
    # A camera-like frame to the coarse input size (checks big downscales against Pillow).
    src = smooth_image(320, 240, 3, 150)
    (OUT / "resize" / "in_320x240.rgb").write_bytes(src.tobytes())
    im = Image.fromarray(src, "RGB")
    for (ow, oh), fname in [((224, 224), "bicubic"), ((96, 72), "bilinear"), ((41, 29), "bicubic")]:
        out = np.asarray(im.resize((ow, oh), FILTERS[fname]), dtype=np.uint8)
        name = f"in_320x240_{ow}x{oh}_{fname}.rgb"
        (OUT / "resize" / name).write_bytes(out.tobytes())
        resize_entries.append({"input": "resize/in_320x240.rgb", "in_width": 320, "in_height": 240,
                               "width": ow, "height": oh, "filter": fname, "expected": f"resize/{name}"})


# ----------------------------------------------------------------------------- preprocessing
COARSE_MEAN, COARSE_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
FINE_MEAN, FINE_STD = [103.53, 116.28, 123.675], [57.375, 57.12, 58.395]


def fine_size(w: int, h: int, size: int, max_size: int | None) -> tuple[int, int]:
    """maskrcnn_benchmark/data/transforms/transforms.py Resize.get_size (official FIBER FG): (h, w)."""
    if max_size is not None:
        min_original_size = float(min((w, h)))
        max_original_size = float(max((w, h)))
        if max_original_size / min_original_size * size > max_size:
            size = int(round(max_size * min_original_size / max_original_size))
    if (w <= h and w == size) or (h <= w and h == size):
        return (h, w)
    if w < h:
        ow = size
        oh = int(size * h / w)
    else:
        oh = size
        ow = int(size * w / h)
    return (oh, ow)


def coarse_pipeline(im: Image.Image, size: int) -> torch.Tensor:
    # fiber/transforms/transform.py albef_transform (official FIBER coarse).
    t = torchvision.transforms.Compose([
        torchvision.transforms.Resize((size, size), interpolation=torchvision.transforms.InterpolationMode.BICUBIC),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(mean=COARSE_MEAN, std=COARSE_STD),
    ])
    return t(im)


def fine_pipeline(im: Image.Image, size: int, max_size: int) -> tuple[torch.Tensor, int, int]:
    # build_transforms(is_train=False): Resize, ToTensor, Normalize(format="bgr255"), then
    # to_image_list(size_divisible=32) pads bottom/right with zeros.
    oh, ow = fine_size(im.width, im.height, size, max_size)
    im = TF.resize(im, [oh, ow])
    x = TF.to_tensor(im)
    x = x[[2, 1, 0]] * 255
    x = TF.normalize(x, mean=FINE_MEAN, std=FINE_STD)
    c, h, w = x.shape
    ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
    padded = x.new_zeros((c, ph, pw))
    padded[:, :h, :w] = x
    return padded, w, h


def make_preprocess_fixtures() -> dict:
    result: dict = {"coarse": [], "fine": [], "fine_sizes": []}
    for n, (w, h, size) in enumerate([(50, 37, 32), (40, 64, 48), (17, 9, 24)]):
        src = smooth_image(w, h, 3, 200 + n)
        stem = f"coarse_{w}x{h}_to_{size}"
        (OUT / "preprocess" / f"{stem}.rgb").write_bytes(src.tobytes())
        out = coarse_pipeline(Image.fromarray(src, "RGB"), size).numpy().astype("<f4")
        (OUT / "preprocess" / f"{stem}.f32").write_bytes(out.tobytes())
        result["coarse"].append({"input": f"preprocess/{stem}.rgb", "in_width": w, "in_height": h, "size": size,
                                 "expected": f"preprocess/{stem}.f32"})
    for n, (w, h, size, max_size) in enumerate([(64, 48, 40, 67), (30, 70, 40, 67), (50, 37, 37, 100), (45, 20, 30, 50)]):
        src = smooth_image(w, h, 3, 300 + n)
        stem = f"fine_{w}x{h}_to_{size}_max{max_size}"
        (OUT / "preprocess" / f"{stem}.rgb").write_bytes(src.tobytes())
        out, rw, rh = fine_pipeline(Image.fromarray(src, "RGB"), size, max_size)
        arr = out.numpy().astype("<f4")
        (OUT / "preprocess" / f"{stem}.f32").write_bytes(arr.tobytes())
        result["fine"].append({"input": f"preprocess/{stem}.rgb", "in_width": w, "in_height": h, "size": size,
                               "max_size": max_size, "resized_width": rw, "resized_height": rh,
                               "padded_width": arr.shape[2], "padded_height": arr.shape[1],
                               "expected": f"preprocess/{stem}.f32"})
    rng = np.random.default_rng(400)
    cases = [(640, 480, 800, 1333), (480, 640, 800, 1333), (1333, 800, 800, 1333), (800, 800, 800, 1333),
             (1920, 1080, 800, 1333), (1080, 1920, 480, 1333), (3000, 1000, 800, 1333), (1, 1000, 800, 1333),
             (1000, 1, 800, 1333), (1, 1, 800, 1333), (799, 800, 800, 1333), (1000, 600, 800, 1333)]
    for _ in range(60):
        w, h = (int(v) for v in rng.integers(1, 4000, size=2))
        cases.append((w, h, int(rng.choice([480, 560, 640, 720, 800])), 1333))
    for w, h, size, max_size in cases:
        oh, ow = fine_size(w, h, size, max_size)
        result["fine_sizes"].append({"width": w, "height": h, "size": size, "max_size": max_size,
                                     "out_width": ow, "out_height": oh})
    return result


# ----------------------------------------------------------------------------- fuzz seeds
def write_fuzz_seeds() -> None:
    for kind, names in {"png": ["png_rgb8_7x3", "png_p4_trns_bytes", "png_rgba16_interlaced", "png_l1_interlaced_3x7",
                                "png_la8", "png_i16", "png_rgb8_chunks"],
                        "jpeg": ["jpeg_7x3", "jpeg_grey", "jpeg_cmyk", "jpeg_progressive", "jpeg_restart", "jpeg_1x17"]}.items():
        folder = CORPUS / kind
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        ext = "png" if kind == "png" else "jpg"
        for name in names:
            shutil.copyfile(OUT / "decode" / f"{name}.{ext}", folder / f"{name}.{ext}")


def main() -> None:
    # Converting palette images whose tRNS holds several alphas warns; the pixels are what we want.
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    for sub in ("decode", "resize", "preprocess"):
        folder = OUT / sub
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    make_png_fixtures()
    make_jpeg_fixtures()
    make_resize_fixtures()
    pre = make_preprocess_fixtures()
    manifest = {
        "generator": "tests/reference/make_images.py",
        "pillow": PIL.__version__,
        "pillow_libjpeg_turbo": features.version("libjpeg_turbo"),
        "torchvision": torchvision.__version__,
        "coarse_mean": COARSE_MEAN, "coarse_std": COARSE_STD, "fine_mean": FINE_MEAN, "fine_std": FINE_STD,
        "decode": decode_entries,
        "resize": resize_entries,
        **pre,
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_fuzz_seeds()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {len(decode_entries)} decode, {len(resize_entries)} resize, {len(pre['coarse'])} coarse, "
          f"{len(pre['fine'])} fine fixtures, {len(pre['fine_sizes'])} size cases; {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
