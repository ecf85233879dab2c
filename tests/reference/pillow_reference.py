"""Reference fixtures for crates/raster, made with the real implementations.

Run:  /work/refvenv/bin/python tests/reference/pillow_reference.py
Needs the packages in tests/reference/requirements-raster.txt.
Writes tests/fixtures/raster/: small PNG inputs, Pillow/numpy outputs and manifest.json.

* resize/*       Pillow 13 Image.resize (NEAREST, BILINEAR, BICUBIC, LANCZOS; no box, no
                 reducing_gap) of RGBA and L images, up, down, one axis only.
* a1111_blur/*   A1111's inpaint mask blur, computed with exact float64 arithmetic (the rule in
                 fidelity.md); compared here with A1111's actual cv2.GaussianBlur calls (<= 2).
* pillow_blur/*  Pillow ImageFilter.GaussianBlur / BoxBlur on RGBA, RGBa-as-RGBA and L.
* luma/*         Pillow convert("L") of an RGBA image (ITU-R 601-2 integer formula).
* png/*          PNGs in many colour types/bit depths and with tEXt/zTXt/iTXt chunks, plus what
                 Pillow decodes from them (convert("RGBA")) and the text it reads.
"""

import json
import math
import os
import zlib

import cv2
import numpy as np
from PIL import Image, ImageFilter, PngImagePlugin

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "raster")
rng = np.random.default_rng(20260123)
manifest = {"resize": [], "a1111_blur": [], "pillow_blur": [], "luma": [], "png": []}


def save(img, rel):
    path = os.path.join(ROOT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, optimize=True)
    return rel


def random_rgba(w, h):
    """Random colours; alpha mixes 0, 255 and partial values in bands and noise."""
    a = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    alpha = a[:, :, 3]
    alpha[:, : w // 4] = 255
    alpha[:, w // 4 : w // 2] = 0
    alpha[: h // 3, w // 2 :] = rng.choice([0, 255, 1, 128, 254], (h // 3, w - w // 2))
    # smooth region so interpolation sees gradients too
    yy, xx = np.mgrid[0:h, 0:w]
    a[h // 2 :, :, 0] = ((xx * 7 + yy * 3) % 256)[h // 2 :]
    return Image.fromarray(a, "RGBA")


def random_gray(w, h):
    g = rng.integers(0, 256, (h, w), dtype=np.uint8)
    g[: h // 3, :] = 0
    g[: h // 3, w // 3 : 2 * w // 3] = 255
    return Image.fromarray(g, "L")


def mask_shapes(w, h):
    m = np.zeros((h, w), np.uint8)
    m[h // 4 : 3 * h // 4, w // 5 : w // 2] = 255
    yy, xx = np.mgrid[0:h, 0:w]
    m[(xx - 0.75 * w) ** 2 + (yy - 0.5 * h) ** 2 < (0.2 * h) ** 2] = 255
    m[0, :] = 255  # touches the border: exercises reflect-101
    return Image.fromarray(m, "L")


# ---------------------------------------------------------------- inputs
inputs = {
    "rgba_37x23": random_rgba(37, 23),
    "rgba_64x48": random_rgba(64, 48),
    "gray_37x23": random_gray(37, 23),
    "gray_64x48": random_gray(64, 48),
    "mask_64x48": mask_shapes(64, 48),
    "mask_37x23": mask_shapes(37, 23),
}
for name, img in inputs.items():
    save(img, f"input/{name}.png")

# ---------------------------------------------------------------- resize
FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
SIZES = {
    "37x23": [(64, 48), (50, 23), (37, 61), (5, 3)],
    "64x48": [(17, 11), (64, 31), (100, 71), (1, 1)],
}
for kind in ("rgba", "gray"):
    for src_size, targets in SIZES.items():
        src_name = f"{kind}_{src_size}"
        src = inputs[src_name]
        for fname, f in FILTERS.items():
            for w, h in targets:
                out = src.resize((w, h), f)
                rel = save(out, f"resize/{src_name}_{fname}_{w}x{h}.png")
                manifest["resize"].append(
                    {"input": f"input/{src_name}.png", "filter": fname, "width": w, "height": h, "output": rel}
                )


# ---------------------------------------------------------------- A1111 mask blur
def reflect101(i, n):
    """OpenCV BORDER_REFLECT_101 index, valid for any offset (repeated reflections)."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = abs(i) % period
    return period - i if i >= n else i


def a1111_kernel(sigma):
    radius = int(2.5 * sigma + 0.5)
    w = [math.exp(-(d * d) / (2.0 * sigma * sigma)) for d in range(-radius, radius + 1)]
    total = 0.0
    for v in w:  # sequential sum (numpy's pairwise sum would differ in the last bit)
        total += v
    return radius, [v / total for v in w]


def a1111_pass(arr, sigma, axis):
    """One separable pass: acc = sum_k w[k] * src[reflect(i + k - r)], in order of k, in float64;
    out = floor(acc + 0.5)."""
    radius, w = a1111_kernel(sigma)
    src = arr.astype(np.float64)
    n = arr.shape[axis]
    acc = np.zeros_like(src)
    for k, wk in enumerate(w):
        idx = [reflect101(i + k - radius, n) for i in range(n)]
        acc = acc + wk * np.take(src, idx, axis=axis)
    return np.floor(acc + 0.5).clip(0, 255).astype(np.uint8)


def a1111_blur(img, sx, sy):
    arr = np.array(img)
    if sx > 0:
        arr = a1111_pass(arr, sx, 1)
    if sy > 0:
        arr = a1111_pass(arr, sy, 0)
    return arr


def a1111_cv2(img, sx, sy):
    """Exactly A1111's processing.py code."""
    np_mask = np.array(img)
    if sx > 0:
        k = 2 * int(2.5 * sx + 0.5) + 1
        np_mask = cv2.GaussianBlur(np_mask, (k, 1), sx)
    if sy > 0:
        k = 2 * int(2.5 * sy + 0.5) + 1
        np_mask = cv2.GaussianBlur(np_mask, (1, k), sy)
    return np_mask


worst_cv2 = 0
for src_name in ("mask_64x48", "mask_37x23", "gray_64x48"):
    for sx, sy in [(4, 4), (2.5, 1.0), (0.5, 0.5), (12, 12), (0, 3), (6, 0)]:
        ours = a1111_blur(inputs[src_name], sx, sy)
        ref_cv2 = a1111_cv2(inputs[src_name], sx, sy)
        diff = int(np.abs(ours.astype(int) - ref_cv2.astype(int)).max())
        worst_cv2 = max(worst_cv2, diff)
        assert diff <= 2, (src_name, sx, sy, diff)
        rel = save(Image.fromarray(ours, "L"), f"a1111_blur/{src_name}_{sx}_{sy}.png")
        manifest["a1111_blur"].append(
            {"input": f"input/{src_name}.png", "sigma_x": sx, "sigma_y": sy, "output": rel, "max_diff_vs_cv2": diff}
        )
print("A1111 blur: exact rule vs cv2.GaussianBlur, max |diff| =", worst_cv2)

# ---------------------------------------------------------------- Pillow blurs
for src_name in ("rgba_64x48", "rgba_37x23", "gray_64x48", "gray_37x23"):
    src = inputs[src_name]
    for radius in (0.3, 1, 2.5, 4, 16, 64, 256):
        rel = save(src.filter(ImageFilter.GaussianBlur(radius)), f"pillow_blur/{src_name}_gaussian_{radius}.png")
        manifest["pillow_blur"].append({"input": f"input/{src_name}.png", "kind": "gaussian", "radius": radius, "output": rel})
    for radius in (1, 2.5, 7):
        rel = save(src.filter(ImageFilter.BoxBlur(radius)), f"pillow_blur/{src_name}_box_{radius}.png")
        manifest["pillow_blur"].append({"input": f"input/{src_name}.png", "kind": "box", "radius": radius, "output": rel})

# ---------------------------------------------------------------- luminance
for src_name in ("rgba_64x48", "rgba_37x23"):
    rel = save(inputs[src_name].convert("L"), f"luma/{src_name}_L.png")
    manifest["luma"].append({"input": f"input/{src_name}.png", "output": rel})

# ---------------------------------------------------------------- PNG decoding and text
base = np.array(inputs["rgba_37x23"])


def png_case(name, img, decoded=None, pnginfo=None, **kw):
    path = os.path.join(ROOT, "png", name + ".png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, pnginfo=pnginfo, **kw)
    back = Image.open(path)
    text = [[k, v] for k, v in back.text.items()]
    dec = decoded if decoded is not None else back.convert("RGBA")
    drel = save(dec, f"png/{name}_rgba.png")
    manifest["png"].append({"input": f"png/{name}.png", "decoded_rgba": drel, "text": text})


png_case("rgb8", Image.fromarray(base[:, :, :3], "RGB"))
png_case("la8", Image.fromarray(base[:, :, [0, 3]], "LA"))
png_case("l1", Image.fromarray(base[:, :, 0] > 127).convert("1"))
pal = Image.fromarray(base[:, :, :3], "RGB").quantize(16)
pal.info["transparency"] = bytes([0, 128, 255] + [255] * 13)
png_case("p4_trns", pal, transparency=bytes([0, 128, 255] + [255] * 13), bits=4)
# 16-bit RGBA: Pillow keeps the high byte when it opens it as RGBA.
rgba16 = (base.astype(np.uint16) * 257 + rng.integers(0, 256, base.shape, dtype=np.uint16) % 257).astype(">u2")
raw16 = rgba16.tobytes()
h, w = base.shape[:2]


def chunk(kind, data):
    c = kind + data
    return len(data).to_bytes(4, "big") + c + zlib.crc32(c).to_bytes(4, "big")


rows = b"".join(b"\x00" + raw16[y * w * 8 : (y + 1) * w * 8] for y in range(h))
png16 = (
    b"\x89PNG\r\n\x1a\n"
    + chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([16, 6, 0, 0, 0]))
    + chunk(b"IDAT", zlib.compress(rows))
    + chunk(b"IEND", b"")
)
with open(os.path.join(ROOT, "png", "rgba16.png"), "wb") as fh:
    fh.write(png16)
rel = save(Image.fromarray((rgba16 >> 8).astype(np.uint8), "RGBA"), "png/rgba16_rgba.png")
manifest["png"].append({"input": "png/rgba16.png", "decoded_rgba": rel, "text": []})

info = PngImagePlugin.PngInfo()
info.add_text(
    "parameters",
    'a castle, (masterpiece:1.2)\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Lora hashes: "x: 1, y: 2"',
)
info.add_text("Comment", "zipped text " * 20, zip=True)
info.add_text("Title", "Café ☕ 画")  # not latin-1 → iTXt
info.add_text("Author", "Zoë")  # latin-1 → tEXt
png_case("text", Image.fromarray(base, "RGBA"), pnginfo=info)

with open(os.path.join(ROOT, "manifest.json"), "w") as fh:
    json.dump(manifest, fh, indent=1, ensure_ascii=False)
total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
print("fixtures:", sum(len(v) for v in manifest.values()), "cases,", total, "bytes")
