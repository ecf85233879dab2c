"""Inpaint reference fixtures (issue 3): A1111's img2img-inpaint path reproduced on the tiny
checkpoints (diffusers modules driven by k-diffusion, see a1111.py), with Pillow doing every image
operation A1111 does with Pillow, and fidelity.md's rules where they differ from A1111.

Ported from AUTOMATIC1111/stable-diffusion-webui: modules/processing.py
(StableDiffusionProcessingImg2Img.init and .sample, create_binary_mask, apply_overlay/uncrop,
inpainting_image_conditioning), modules/images.py (resize_image modes 0/1/2 with the
`fill_height > 0` guards of current A1111, flatten), modules/masking.py (get_crop_region(_v2),
expand_crop_region, fill), modules/sd_samplers_cfg_denoiser.py (the denoised blend).
Every rule and where it comes from is listed in tests/reference/README.md ("Inpaint references").

Run: /work/refvenv/bin/python tests/reference/inpaint_reference.py [geometry] [pipeline] [only=SUBSTR]
(no argument: both). Deterministic: re-running rewrites byte-identical files.
Writes tests/fixtures/inpaint/.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
import a1111  # noqa: E402
import make_references as mr  # noqa: E402  (torch threads/determinism, make_init_image)
import tiny_models as tm  # noqa: E402

OUT = os.path.join(tm.ROOT, "tests", "fixtures", "inpaint")
LANCZOS = Image.Resampling.LANCZOS
BICUBIC = Image.Resampling.BICUBIC


# --- small I/O helpers ---------------------------------------------------------------------------

def save_png(img: Image.Image, rel: str) -> str:
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, optimize=True)
    return rel


def write_json(name: str, obj: dict):
    """Top-level keys on their own lines, one list item (case) per line: small and diffable."""
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        f.write("{\n")
        items = list(obj.items())
        for n, (k, v) in enumerate(items):
            f.write(f" {json.dumps(k)}: ")
            if isinstance(v, list):
                f.write("[\n")
                f.write(",\n".join("  " + json.dumps(x, ensure_ascii=False) for x in v))
                f.write("\n ]")
            else:
                f.write(json.dumps(v, ensure_ascii=False))
            f.write(",\n" if n + 1 < len(items) else "\n")
        f.write("}\n")
    print("wrote", name)


# --- mask: read, binarise, invert, blur -------------------------------------------------------

def mask_to_l(im: Image.Image) -> tuple[Image.Image, str]:
    """A1111 create_binary_mask, with fidelity.md's rule: a mask with real alpha (RGBA/LA/tRNS whose
    alpha is not all 255) uses its alpha, otherwise its luminance (Pillow convert('L'), ITU-R 601-2
    integer formula); BOTH are then binarised (> 128 -> 255, else 0)."""
    if im.mode in ("LA", "PA") or (im.mode in ("RGB", "L", "P") and "transparency" in im.info):
        im = im.convert("RGBA")
    if im.mode == "RGBA" and im.getextrema()[-1] != (255, 255):
        grey, source = im.split()[-1], "alpha"
    else:
        grey, source = im.convert("L"), "luminance"
    return grey.point(lambda x: 255 if x > 128 else 0), source


def reflect101(i: int, n: int) -> int:
    """OpenCV BORDER_REFLECT_101 index for any offset (repeated reflections)."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = abs(i) % period
    return period - i if i >= n else i


def blur_kernel(sigma: float) -> tuple[int, list[float]]:
    radius = int(2.5 * sigma + 0.5)
    w = [math.exp(-(d * d) / (2.0 * sigma * sigma)) for d in range(-radius, radius + 1)]
    total = 0.0
    for v in w:  # sequential sum
        total += v
    return radius, [v / total for v in w]


def blur_pass(arr: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """acc = sum_k w[k] * src[reflect101(i + k - r)] in float64, in order of k; out = floor(acc + 0.5)."""
    radius, w = blur_kernel(sigma)
    src = arr.astype(np.float64)
    n = arr.shape[axis]
    acc = np.zeros_like(src)
    for k, wk in enumerate(w):
        idx = [reflect101(i + k - radius, n) for i in range(n)]
        acc = acc + wk * np.take(src, idx, axis=axis)
    return np.floor(acc + 0.5).clip(0, 255).astype(np.uint8)


def mask_blur(arr: np.ndarray, blur: float) -> np.ndarray:
    """fidelity.md's exact form of A1111's two cv2.GaussianBlur calls: horizontal pass rounded to
    uint8, then vertical pass rounded."""
    if blur > 0:
        arr = blur_pass(arr, blur, 1)
        arr = blur_pass(arr, blur, 0)
    return arr


def check_blur_against_raster_fixtures():
    """The blur must be the one crates/raster was proven against (tests/fixtures/raster/a1111_blur)."""
    root = os.path.join(tm.ROOT, "tests", "fixtures", "raster")
    with open(os.path.join(root, "manifest.json"), encoding="utf-8") as f:
        man = json.load(f)
    n = 0
    for c in man["a1111_blur"]:
        src = np.array(Image.open(os.path.join(root, c["input"])))
        arr = src
        if c["sigma_x"] > 0:
            arr = blur_pass(arr, c["sigma_x"], 1)
        if c["sigma_y"] > 0:
            arr = blur_pass(arr, c["sigma_y"], 0)
        assert np.array_equal(arr, np.array(Image.open(os.path.join(root, c["output"])))), c
        n += 1
    print(f"mask blur identical to tests/fixtures/raster/a1111_blur on {n} cases")


def _div255(v):
    t = v + 128
    return ((t >> 8) + t) >> 8


def check_pillow_arithmetic():
    """The integer formulas the README states for the Pillow operations of the paste-back and the
    fill, asserted against Pillow itself (every (colour, alpha) pair; random pixels otherwise)."""
    rng = np.random.default_rng(7)
    c = np.repeat(np.arange(256), 256).astype(np.int64)
    a = np.tile(np.arange(256), 256).astype(np.int64)
    img = np.stack([c, c, c, a], -1).astype(np.uint8).reshape(256, 256, 4)
    got = np.array(Image.fromarray(img, "RGBA").convert("RGBa")).reshape(-1, 4).astype(np.int64)
    assert np.array_equal(got[:, 0], _div255(c * a)) and np.array_equal(got[:, 3], a)  # premultiply
    got = np.array(Image.fromarray(img, "RGBa").convert("RGBA")).reshape(-1, 4).astype(np.int64)
    unpre = np.where((a == 0) | (a == 255), c, np.minimum(255, (255 * c) // np.maximum(a, 1)))
    assert np.array_equal(got[:, 0], unpre)  # un-premultiply: truncating division, a = 0 keeps c

    src = rng.integers(0, 256, (128, 128, 4), dtype=np.uint8)
    dst = rng.integers(0, 256, (128, 128, 4), dtype=np.uint8)
    msk = rng.integers(0, 256, (128, 128), dtype=np.uint8)
    src[:8, :, 3] = 0
    src[8:16, :, 3] = 255
    s, d, mm = src.astype(np.int64), dst.astype(np.int64), msk.astype(np.int64)[..., None]
    out = Image.fromarray(dst, "RGBa")
    out.paste(Image.fromarray(src, "RGBa"), mask=Image.fromarray(msk, "L"))
    assert np.array_equal(np.array(out), _div255(d * (255 - mm) + s * mm))  # paste through an L mask

    out = Image.fromarray(dst, "RGBA")
    out.alpha_composite(Image.fromarray(src, "RGBA"))
    sa, da = s[..., 3:4], d[..., 3:4]
    outa255 = sa * 255 + da * (255 - sa)
    coef1 = sa * 255 * 255 * 128 // np.maximum(outa255, 1)
    coef2 = 255 * 128 - coef1

    def shift(v):
        return ((v >> 8) + v) >> 8

    exp = np.concatenate([shift(s[..., :3] * coef1 + d[..., :3] * coef2 + (0x80 << 7)) >> 7,
                          shift(outa255 + 0x80)], -1)
    exp = np.where(sa == 0, d, exp)
    assert np.array_equal(np.array(out), exp)  # alpha_composite

    rgba = Image.fromarray(src, "RGBA")
    for radius in (0, 2, 16, 256):  # GaussianBlur treats RGBa bytes exactly as RGBA bytes
        b1 = np.array(Image.frombytes("RGBa", rgba.size, rgba.tobytes()).filter(ImageFilter.GaussianBlur(radius)))
        b2 = np.array(rgba.filter(ImageFilter.GaussianBlur(radius)))
        assert np.array_equal(b1, b2), radius
    assert np.array_equal(np.array(rgba.filter(ImageFilter.GaussianBlur(0))), src)
    print("Pillow premultiply / un-premultiply / masked paste / alpha_composite formulas verified")


# --- geometry (masking.py) ---------------------------------------------------------------------

def get_crop_region_loops(mask: np.ndarray, pad: int = 0):
    """A1111 masking.get_crop_region before 1.9 (numpy loops), kept to cross-check v2."""
    h, w = mask.shape
    crop_left = 0
    for i in range(w):
        if not (mask[:, i] == 0).all():
            break
        crop_left += 1
    crop_right = 0
    for i in reversed(range(w)):
        if not (mask[:, i] == 0).all():
            break
        crop_right += 1
    crop_top = 0
    for i in range(h):
        if not (mask[i] == 0).all():
            break
        crop_top += 1
    crop_bottom = 0
    for i in reversed(range(h)):
        if not (mask[i] == 0).all():
            break
        crop_bottom += 1
    return (int(max(crop_left - pad, 0)), int(max(crop_top - pad, 0)),
            int(min(w - crop_right + pad, w)), int(min(h - crop_bottom + pad, h)))


def get_crop_region(mask: np.ndarray, pad: int = 0):
    """A1111 masking.get_crop_region_v2: bbox of the non-zero pixels grown by pad, clamped; None
    for an empty mask (A1111 then falls back to whole-picture img2img; the contract: an error)."""
    img = Image.fromarray(mask)
    box = img.getbbox()
    if not box:
        return None
    x1, y1, x2, y2 = box
    out = (max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, img.size[0]), min(y2 + pad, img.size[1])) if pad else box
    assert tuple(out) == get_crop_region_loops(mask, pad), (out, get_crop_region_loops(mask, pad))
    return tuple(out)


def clamp_context(context_xywh, width: int, height: int):
    """The explicit context box (x, y, w, h) clamped to the image; None when nothing is left."""
    x, y, w, h = context_xywh
    x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2, y2)


def union_box(a, b):
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def expand_crop_region(crop_region, processing_width, processing_height, image_width, image_height):
    """A1111 masking.expand_crop_region, verbatim."""
    x1, y1, x2, y2 = crop_region
    ratio_crop_region = (x2 - x1) / (y2 - y1)
    ratio_processing = processing_width / processing_height
    if ratio_crop_region > ratio_processing:
        desired_height = (x2 - x1) / ratio_processing
        desired_height_diff = int(desired_height - (y2 - y1))
        y1 -= desired_height_diff // 2
        y2 += desired_height_diff - desired_height_diff // 2
        if y2 >= image_height:
            diff = y2 - image_height
            y2 -= diff
            y1 -= diff
        if y1 < 0:
            y2 -= y1
            y1 -= y1
        if y2 >= image_height:
            y2 = image_height
    else:
        desired_width = (y2 - y1) * ratio_processing
        desired_width_diff = int(desired_width - (x2 - x1))
        x1 -= desired_width_diff // 2
        x2 += desired_width_diff - desired_width_diff // 2
        if x2 >= image_width:
            diff = x2 - image_width
            x2 -= diff
            x1 -= diff
        if x1 < 0:
            x2 -= x1
            x1 -= x1
        if x2 >= image_width:
            x2 = image_width
    return x1, y1, x2, y2


def fit_geometry(src_w: int, src_h: int, width: int, height: int) -> dict:
    """resize_image mode 2 (fit and fill): resized size, paste offset, edge-fill sizes."""
    ratio, src_ratio = width / height, src_w / src_h
    rw = width if ratio < src_ratio else src_w * height // src_h
    rh = height if ratio >= src_ratio else src_h * width // src_w
    g = dict(resized=[rw, rh], offset=[width // 2 - rw // 2, height // 2 - rh // 2], fill=None)
    if ratio < src_ratio:
        g["fill"] = dict(axis="y", size=height // 2 - rh // 2, second_at=height // 2 - rh // 2 + rh)
    elif ratio > src_ratio:
        g["fill"] = dict(axis="x", size=width // 2 - rw // 2, second_at=width // 2 - rw // 2 + rw)
    return g


def crop_geometry(src_w: int, src_h: int, width: int, height: int) -> dict:
    """resize_image mode 1 (crop and resize): resized size, paste offset (may be negative)."""
    ratio, src_ratio = width / height, src_w / src_h
    rw = width if ratio > src_ratio else src_w * height // src_h
    rh = height if ratio <= src_ratio else src_h * width // src_w
    return dict(resized=[rw, rh], offset=[width // 2 - rw // 2, height // 2 - rh // 2])


def only_masked_box(blurred: np.ndarray, padding: int, width: int, height: int, context=None) -> dict:
    """The whole only-masked geometry: padded clamped bbox, union with the clamped context box
    (BEFORE widening), widening to the working aspect ratio."""
    ch, cw = blurred.shape
    padded = get_crop_region(blurred, padding)
    if padded is None:
        return dict(error="empty_mask")
    ctx = clamp_context(context, cw, ch) if context is not None else None
    union = union_box(padded, ctx)
    box = expand_crop_region(union, width, height, cw, ch)
    x1, y1, x2, y2 = box
    return dict(bbox=list(get_crop_region(blurred, 0)), padded=list(padded),
                context_clamped=list(ctx) if ctx else None, union=list(union), crop_region=[x1, y1, x2, y2],
                paste_to=[x1, y1, x2 - x1, y2 - y1])


# --- Pillow image operations (images.py, masking.py, processing.py) ----------------------------

def resize_image(resize_mode: int, im: Image.Image, width: int, height: int) -> Image.Image:
    """A1111 images.resize_image with no upscaler (opts.upscaler_for_img2img = None): Pillow
    LANCZOS; modes 1 and 2 build a new RGB image; mode 2 fills the edges with Pillow's Lanczos of a
    zero-width box at each edge (weights L(0.5), L(1.5), L(2.5) over the 3 edge rows/columns)."""

    def resize(im, w, h):
        return im.resize((w, h), resample=LANCZOS)

    if resize_mode == 0:
        return resize(im, width, height)
    ratio = width / height
    src_ratio = im.width / im.height
    if resize_mode == 1:
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
        resized = resize(im, src_w, src_h)
        res = Image.new("RGB", (width, height))
        res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
        return res
    src_w = width if ratio < src_ratio else im.width * height // im.height
    src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = resize(im, src_w, src_h)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if ratio < src_ratio:
        fill_height = height // 2 - src_h // 2
        if fill_height > 0:
            res.paste(resized.resize((width, fill_height), box=(0, 0, width, 0)), box=(0, 0))
            res.paste(resized.resize((width, fill_height), box=(0, resized.height, width, resized.height)),
                      box=(0, fill_height + src_h))
    elif ratio > src_ratio:
        fill_width = width // 2 - src_w // 2
        if fill_width > 0:
            res.paste(resized.resize((fill_width, height), box=(0, 0, 0, height)), box=(0, 0))
            res.paste(resized.resize((fill_width, height), box=(resized.width, 0, resized.width, height)),
                      box=(fill_width + src_w, 0))
    return res


def masking_fill(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111 masking.fill, verbatim."""
    image_mod = Image.new("RGBA", (image.width, image.height))
    image_masked = Image.new("RGBa", (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    image_masked = image_masked.convert("RGBa")
    for radius, repeats in [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]:
        blurred = image_masked.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            image_mod.alpha_composite(blurred)
    return image_mod.convert("RGB")


def make_overlay(image: Image.Image, mask_for_overlay: Image.Image) -> Image.Image:
    """processing.py: the input pasted through the inverted overlay mask onto a transparent RGBa
    image (Pillow's premultiplied paste), then converted to straight RGBA."""
    image_masked = Image.new("RGBa", (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask_for_overlay.convert("L")))
    return image_masked.convert("RGBA")


def uncrop(image: Image.Image, dest_size, paste_loc) -> Image.Image:
    """processing.uncrop: the result crop-and-resized (mode 1) to the box, pasted on a transparent
    RGBA canvas."""
    x, y, w, h = paste_loc
    base_image = Image.new("RGBA", dest_size)
    image = resize_image(1, image, w, h)
    base_image.paste(image, (x, y))
    return base_image


def apply_overlay(image: Image.Image, paste_loc, overlay: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    uncropped = None
    if paste_loc is not None:
        image = uncropped = uncrop(image, (overlay.width, overlay.height), paste_loc)
    image = image.convert("RGBA")
    image.alpha_composite(overlay)
    return image.convert("RGB"), uncropped


# --- inputs ------------------------------------------------------------------------------------

def ellipse(m, cx, cy, rx, ry):
    yy, xx = np.mgrid[0:m.shape[0], 0:m.shape[1]]
    m[((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.0] = 255


def rect(m, x1, y1, x2, y2):
    m[y1:y2, x1:x2] = 255


def blank(w, h):
    return np.zeros((h, w), np.uint8)


def mask_inputs() -> dict[str, Image.Image]:
    """Mask PNGs (white = regenerate). Opaque L masks unless the name says otherwise."""
    out = {}
    m = blank(64, 64)
    ellipse(m, 36, 28, 13, 9)
    rect(m, 14, 40, 23, 51)
    out["m64_blob"] = m
    m = blank(64, 64)
    rect(m, 6, 9, 31, 27)
    out["m64_rect"] = m
    m = blank(64, 64)
    rect(m, 0, 0, 21, 15)  # touches left and top
    rect(m, 50, 40, 64, 53)  # touches right
    out["m64_border"] = m
    out["m64_full"] = np.full((64, 64), 255, np.uint8)
    out["m64_empty"] = blank(64, 64)
    m = blank(96, 80)
    ellipse(m, 58, 34, 18, 13)
    out["m96x80_blob"] = m
    m = blank(96, 80)
    rect(m, 79, 61, 96, 80)  # touches right and bottom
    out["m96x80_border"] = m
    out["m96x80_full"] = np.full((80, 96), 255, np.uint8)
    out["m96x80_empty"] = blank(96, 80)
    m = blank(67, 45)
    ellipse(m, 41, 19, 9, 6)
    out["m67x45_blob"] = m
    m = blank(72, 56)
    rect(m, 9, 12, 21, 47)  # tall: widened horizontally for a wide working size
    out["m72x56_tall"] = m
    m = blank(80, 72)
    ellipse(m, 30, 40, 14, 11)
    out["m80x72_blob"] = m
    imgs = {k: Image.fromarray(v, "L") for k, v in out.items()}

    # Alpha vs luminance. RGBA with real alpha: alpha carries the blob; the colour says something
    # else (a white/black pattern whose luminance would be a different mask).
    blob = out["m64_blob"]
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, :32] = 255
    rgba = np.dstack([rgb, blob])
    rgba[blob == 0, 3] = 0
    rgba[(blob == 0) & (np.arange(64)[None, :] % 7 == 0), 3] = 128  # 128 -> not masked (> 128 rule)
    rgba[(blob == 255) & (np.arange(64)[:, None] % 5 == 0), 3] = 129  # 129 -> masked
    imgs["m64_blob_rgba_alpha"] = Image.fromarray(rgba, "RGBA")
    # Opaque RGB with coloured regions: luminance decides (pure red L=76 -> not masked, yellow
    # L=226 -> masked, grey 128 -> not, grey 129 -> masked).
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[blob == 255] = (255, 255, 0)
    rgb[6:20, 4:60] = (255, 0, 0)
    rgb[44:52, 30:46] = (128, 128, 128)
    rgb[44:52, 46:60] = (129, 129, 129)
    rgb[54:62, 30:60] = (0, 255, 0)  # L=150 -> masked
    imgs["m64_rgb_luma"] = Image.fromarray(rgb, "RGB")
    # RGBA whose alpha is all 255: luminance, not alpha.
    imgs["m64_rgba_opaque"] = Image.fromarray(np.dstack([rgb, np.full((64, 64), 255, np.uint8)]), "RGBA")
    return imgs


# --- cases -------------------------------------------------------------------------------------

BASE = dict(model="sd1", prompt="a red fox in a snowy forest, highly detailed", negative="", seed=1234,
            steps=8, cfg=7.0, sampler="euler", schedule="normal", strength=0.75, batch=1, clip_skip=1,
            width=64, height=64, canvas="64x64", mask="m64_blob", invert_mask=False, mask_blur=4,
            inpaint_area="whole", padding=8, masked_content="original", context=None)
CONTENTS = ["original", "fill", "latent_noise", "latent_nothing"]


def cases() -> list[dict]:
    out = []

    def add(name, **kw):
        c = dict(BASE)
        c.update(kw)
        c["name"] = name
        out.append(c)

    only96 = dict(inpaint_area="only_masked", canvas="96x80", mask="m96x80_blob")
    for model, tag in [("sd1", "sd1"), ("sd1_inpaint", "sd1inp")]:
        for content in CONTENTS:
            add(f"{tag}_whole_{content}", model=model, masked_content=content)
        for content in CONTENTS:
            add(f"{tag}_only_{content}", model=model, masked_content=content, **only96)
    add("sd1_whole_blur0", mask_blur=0)
    add("sd1_only_blur0", mask_blur=0, **only96)
    add("sd1_only_pad32", padding=32, **only96)
    add("sd1_only_67x45_euler_a", sampler="euler_a", inpaint_area="only_masked", canvas="67x45",
        mask="m67x45_blob", masked_content="fill")
    add("sd1_only_72x56_w64h48", inpaint_area="only_masked", canvas="72x56", mask="m72x56_tall", width=64,
        height=48, padding=4)
    add("sd1_only_72x56_w48h64_pad32", inpaint_area="only_masked", canvas="72x56", mask="m72x56_tall",
        width=48, height=64, padding=32)
    add("sd1_whole_border", mask="m64_border", masked_content="fill")
    add("sd1_only_border", inpaint_area="only_masked", canvas="96x80", mask="m96x80_border")
    add("sd1_whole_full_mask", mask="m64_full", masked_content="fill")
    add("sd1_only_full_mask", inpaint_area="only_masked", canvas="96x80", mask="m96x80_full")
    add("sd1_whole_invert", invert_mask=True)
    add("sd1_only_invert", invert_mask=True, **only96)
    add("sd1_whole_mask_rgba_alpha", mask="m64_blob_rgba_alpha")
    add("sd1_whole_mask_rgb_luma", mask="m64_rgb_luma")
    add("sd1_whole_mask_rgba_opaque", mask="m64_rgba_opaque")
    add("sd1_whole_s100", strength=1.0)
    add("sd1_only_s100_fill", strength=1.0, masked_content="fill", **only96)
    add("sd1inp_whole_s100_latent_noise", model="sd1_inpaint", strength=1.0, masked_content="latent_noise")
    add("sd1_only_context", context=[4, 50, 30, 40], **only96)  # extends left and down, clamped at the bottom
    add("sd1_only_context_inside", context=[50, 30, 10, 8], **only96)  # inside the padded box: no change
    add("sd1_whole_batch2_euler_a", batch=2, sampler="euler_a", masked_content="latent_noise")
    add("sd1_only_batch2", batch=2, masked_content="fill", **only96)
    add("sd1_same_seed_mask_a", sampler="euler_a", masked_content="latent_noise", mask="m64_blob", seed=777)
    add("sd1_same_seed_mask_b", sampler="euler_a", masked_content="latent_noise", mask="m64_rect", seed=777)
    add("sd1inp_only_euler_a_fill", model="sd1_inpaint", sampler="euler_a", masked_content="fill", **only96)
    add("sd1_whole_resized_80x72", canvas="80x72", mask="m80x72_blob")
    add("sdxl_only_original", model="sdxl", cfg=5.0, **only96)
    add("sdxl_whole_fill", model="sdxl", cfg=5.0, masked_content="fill")
    return out


ERROR_CASES = [
    dict(name="empty_mask_whole", canvas="64x64", mask="m64_empty", inpaint_area="whole", mask_blur=4,
         expect="empty mask: a typed error (A1111 would fall back to plain img2img)"),
    dict(name="empty_mask_only_masked", canvas="96x80", mask="m96x80_empty", inpaint_area="only_masked",
         mask_blur=4, padding=8, expect="empty mask: a typed error (A1111 would fall back to plain img2img)"),
    dict(name="full_mask_inverted_is_empty", canvas="64x64", mask="m64_full", invert_mask=True,
         inpaint_area="only_masked", mask_blur=4, padding=8, expect="empty mask after inversion: a typed error"),
]


# --- the inpaint pipeline ----------------------------------------------------------------------

@torch.no_grad()
def vae_encode_masked(m, image_u8: np.ndarray, pixel_mask: np.ndarray) -> torch.Tensor:
    """9-channel conditioning image: (pixels/255*2-1) * (1 - round(mask/255)) -> VAE mean * scaling.
    (A1111's torch.lerp(src, src*(1-m), 1.0) is exactly src*(1-m).)"""
    x = torch.from_numpy(image_u8.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    x = x * 2 - 1
    x = x * (1.0 - torch.from_numpy(pixel_mask)[None, None])
    return m.vae.encode(x).latent_dist.mean * m.scaling


def mask_grid(t) -> list[list[int]]:
    return [[int(v) for v in row] for row in np.asarray(t)]


@torch.no_grad()
def run_case(c: dict, models_cache: dict, inputs: dict, tensors: dict) -> dict:
    kind = c["model"]
    if kind not in models_cache:
        models_cache[kind] = tm.load_tiny(kind)
    m = models_cache[kind]
    W, H = c["width"], c["height"]
    d = f"cases/{c['name']}"
    inter: dict = {}

    canvas = inputs["images"][c["canvas"]]
    mask_png = inputs["masks"][c["mask"]]

    # 1. mask -> L (alpha or luminance) -> binarise -> invert -> blur (canvas size)
    mask_l, source = mask_to_l(mask_png)
    if c["invert_mask"]:
        mask_l = ImageOps.invert(mask_l)
    inter["binary_mask"] = save_png(mask_l, f"{d}/binary_mask.png")
    blurred = Image.fromarray(mask_blur(np.array(mask_l), c["mask_blur"]), "L")
    inter["blurred_mask"] = save_png(blurred, f"{d}/blurred_mask.png")

    # 2. area: geometry, working mask, overlay mask
    image = canvas.convert("RGB")  # images.flatten of an opaque RGB image
    paste_to = None
    if c["inpaint_area"] == "only_masked":
        mask_for_overlay = blurred
        g = only_masked_box(np.array(blurred), c["padding"], W, H, c["context"])
        assert "error" not in g, c["name"]
        inter.update(geometry=g, fit=fit_geometry(g["paste_to"][2], g["paste_to"][3], W, H),
                     uncrop=crop_geometry(W, H, g["paste_to"][2], g["paste_to"][3]))
        crop_region = tuple(g["crop_region"])
        working_mask = resize_image(2, blurred.crop(crop_region), W, H)  # RGB, R = G = B
        paste_to = tuple(g["paste_to"])
    else:
        crop_region = None
        working_mask = resize_image(0, blurred, W, H)  # L
        arr = np.clip(np.array(working_mask).astype(np.float32) * 2, 0, 255).astype(np.uint8)
        mask_for_overlay = Image.fromarray(arr)
        image = resize_image(0, image, W, H)
        inter["resized_input"] = save_png(image, f"{d}/resized_input.png") if image.size != canvas.size else None
    working_mask_l = working_mask.convert("L")
    assert np.array_equal(np.array(working_mask_l), np.array(working_mask.convert("RGB"))[:, :, 0])
    inter["working_mask"] = save_png(working_mask_l, f"{d}/working_mask.png")
    inter["overlay_mask"] = save_png(mask_for_overlay, f"{d}/overlay_mask.png")
    overlay = make_overlay(image, mask_for_overlay)
    inter["overlay"] = save_png(overlay, f"{d}/overlay.png")
    paste_base = image  # what the unmasked pixels of the result must equal

    # 3. working image (crop + fit-and-fill for only masked), masked content fill
    if crop_region is not None:
        image = resize_image(2, image.crop(crop_region), W, H)
    inter["working_image"] = save_png(image, f"{d}/working_image.png")
    if c["masked_content"] != "original":
        image = masking_fill(image, working_mask)
        inter["filled_image"] = save_png(image, f"{d}/filled_image.png")
    else:
        inter["filled_image"] = None
    image_u8 = np.array(image)

    # 4. latent mask: working mask -> RGB -> Pillow bicubic to latent size -> /255 -> round
    latmask = working_mask.convert("RGB").resize((W // 8, H // 8), resample=BICUBIC)
    latmask = np.moveaxis(np.array(latmask, dtype=np.float32), 2, 0) / 255
    latmask_bytes = np.array(working_mask.convert("RGB").resize((W // 8, H // 8), resample=BICUBIC))[:, :, 0]
    latmask = np.around(latmask[0])
    inter["latent_mask"] = mask_grid(latmask)
    inter["latent_mask_bicubic_u8"] = mask_grid(latmask_bytes)
    nmask = torch.asarray(np.tile(latmask[None], (4, 1, 1)))  # 1 = regenerate
    mask = torch.asarray(1.0 - np.tile(latmask[None], (4, 1, 1)))  # 1 = keep

    # 5. VAE, conditioning
    vae_latent = a1111.vae_encode_mean(m, image_u8)
    image_cond = None
    if m.unet.config.in_channels == 9:
        pixel_mask = np.round(np.array(working_mask_l).astype(np.float32) / 255.0).astype(np.float32)
        masked_lat = vae_encode_masked(m, image_u8, pixel_mask)
        cell_mask = torch.from_numpy(pixel_mask)[None, None]
        cell_mask = torch.nn.functional.interpolate(cell_mask, size=(H // 8, W // 8))  # nearest: pixel (8i, 8j)
        assert np.array_equal(cell_mask[0, 0].numpy(), pixel_mask[::8, ::8])
        image_cond = torch.cat([cell_mask, masked_lat], dim=1)
        inter["inpaint_mask_cells"] = mask_grid(cell_mask[0, 0])
        tensors[f"{c['name']}.image_cond"] = image_cond
    tensors[f"{c['name']}.vae_latent"] = vae_latent

    den = a1111.UNetDenoiser(m)
    cond = a1111.encode_prompt(m, c["prompt"], clip_skip=c["clip_skip"])
    uncond = a1111.encode_prompt(m, c["negative"], clip_skip=c["clip_skip"])
    added_c = added_u = None
    if m.is_xl:
        tid = a1111.sdxl_time_ids(H, W)
        added_c = {"text_embeds": cond.pooled, "time_ids": tid}
        added_u = {"text_embeds": uncond.pooled, "time_ids": tid}
    sigmas_full = a1111.schedule(den, c["schedule"], c["steps"])
    k = math.floor(c["strength"] * c["steps"] + 1e-6)
    sigmas = sigmas_full[c["steps"] - k:]

    decoded_files, final_files, uncropped_files, draws = [], [], [], []
    unmasked_pixels = 0
    for i in range(c["batch"]):
        noise = a1111.ImageNoise(c["seed"] + i, (1, 4, H // 8, W // 8))
        n0 = noise.randn()
        if c["masked_content"] == "latent_noise":
            z0 = vae_latent * mask + n0 * nmask  # unit noise = the image's initial noise
        elif c["masked_content"] == "latent_nothing":
            z0 = vae_latent * mask
        else:
            z0 = vae_latent

        def post(den_x, z0=z0):
            return z0 * mask + nmask * den_x  # A1111 CFGDenoiser: init_latent * mask + nmask * denoised

        model_fn = a1111.cfg_model(den, cond, uncond, c["cfg"], added_c, added_u, image_cond, post)
        x = z0 + n0 * sigmas[0]
        x = a1111.run_sampler(c["sampler"], model_fn, x, sigmas, noise.sampler)
        x = x * nmask + z0 * mask
        draws.append(noise.draws)
        tensors[f"{c['name']}.noise.{i}"] = n0
        tensors[f"{c['name']}.init_latent.{i}"] = z0
        tensors[f"{c['name']}.final_latent.{i}"] = x
        decoded = Image.fromarray(a1111.vae_decode_u8(m, x))
        decoded_files.append(save_png(decoded, f"{d}/decoded_{i}.png"))
        final, uncropped = apply_overlay(decoded, paste_to, overlay)
        if uncropped is not None:
            uncropped_files.append(save_png(uncropped, f"{d}/uncropped_{i}.png"))
        final_files.append(save_png(final, f"{d}/final_{i}.png"))

        # Paste-back: where the overlay mask is 0 the output is the input, byte for byte.
        keep = np.array(mask_for_overlay) == 0
        fa, ia = np.array(final), np.array(paste_base)
        assert fa.shape == ia.shape
        assert np.array_equal(fa[keep], ia[keep]), c["name"]
        # ... and where the overlay mask is 255 it is the generated (uncropped) image.
        full = np.array(mask_for_overlay) == 255
        gen = np.array(uncropped.convert("RGB")) if uncropped is not None else np.array(decoded)
        assert np.array_equal(fa[full], gen[full]), c["name"]
        unmasked_pixels = int(keep.sum())

    inter.update(sigmas=[float(s) for s in sigmas], noise_draws_per_image=draws, decoded=decoded_files,
                 uncropped=uncropped_files or None)
    entry = {k: v for k, v in c.items()}
    entry.update(canvas_width=canvas.width, canvas_height=canvas.height,
                 input_image=f"inputs/image_{c['canvas']}.png", mask_image=f"inputs/{c['mask']}.png",
                 mask_source=source, checkpoint=f"models/tiny_{kind}.safetensors",
                 vae_scaling=tm.KINDS[kind]["scaling"], steps_run=k,
                 output_width=paste_base.width, output_height=paste_base.height,
                 final=final_files, unmasked_pixels=unmasked_pixels, intermediates=inter)
    del entry["canvas"], entry["mask"]
    print(f"{c['name']}: draws {draws}, latent mask {int(latmask.sum())}/{latmask.size} cells, "
          f"unmasked px {unmasked_pixels}, box {inter.get('geometry', {}).get('crop_region')}")
    return entry


CANVASES = [(64, 64), (96, 80), (67, 45), (72, 56), (80, 72)]


def pipeline(only: str | None = None):
    os.makedirs(os.path.join(OUT, "inputs"), exist_ok=True)
    images = {}
    for w, h in CANVASES:
        images[f"{w}x{h}"] = Image.fromarray(mr.make_init_image(w, h))
        save_png(images[f"{w}x{h}"], f"inputs/image_{w}x{h}.png")
    masks = mask_inputs()
    for name, img in masks.items():
        save_png(img, f"inputs/{name}.png")
    # Read the masks back from their PNGs, as the Rust side will.
    masks = {name: Image.open(os.path.join(OUT, f"inputs/{name}.png")) for name in masks}
    inputs = dict(images=images, masks=masks)

    cache: dict = {}
    tensors: dict = {}
    entries = []
    for c in cases():
        if only and only not in c["name"]:
            continue
        entries.append(run_case(c, cache, inputs, tensors))
    if only:
        return
    errors = []
    for e in ERROR_CASES:
        mask_l, source = mask_to_l(masks[e["mask"]])
        if e.get("invert_mask"):
            mask_l = ImageOps.invert(mask_l)
        blurred = mask_blur(np.array(mask_l), e["mask_blur"])
        assert not blurred.any()
        ee = dict(e)
        ee.update(input_image=f"inputs/image_{e['canvas']}.png", mask_image=f"inputs/{e['mask']}.png",
                  mask_source=source)
        del ee["canvas"], ee["mask"]
        errors.append(ee)

    t = {k: v.detach().clone().contiguous() for k, v in tensors.items()}
    save_file(t, os.path.join(OUT, "latents.safetensors"))
    write_json("manifest.json", {
        "about": "A1111 img2img inpaint references on the tiny checkpoints; every rule in "
                 "tests/reference/README.md ('Inpaint references'). Paths are relative to this folder; "
                 "checkpoint paths relative to tests/fixtures/. Tensors in latents.safetensors as "
                 "<name>.vae_latent [1,4,h,w] (VAE mean * scaling of the working/filled image), "
                 "<name>.init_latent.<i> (z0 after masked content), <name>.noise.<i> (initial unit noise), "
                 "<name>.final_latent.<i> (after the final latent blend, before decode), "
                 "<name>.image_cond [1,5,h,w] (9-channel models: mask cells ++ masked-image latent).",
        "cases": entries,
        "error_cases": errors,
    })


# --- geometry-only cases ------------------------------------------------------------------------

def geometry():
    rng = random.Random(20260311)
    out = []

    def add(name, cw, ch, rects, padding, width, height, context=None):
        m = blank(cw, ch)
        for x, y, w, h in rects:
            rect(m, x, y, x + w, y + h)
        g = only_masked_box(m, padding, width, height, context)
        case = dict(name=name, canvas_width=cw, canvas_height=ch, mask_rects=[list(r) for r in rects],
                    padding=padding, width=width, height=height, context=context)
        case.update(g)
        if "error" not in g:
            bw, bh = g["paste_to"][2], g["paste_to"][3]
            case["fit"] = fit_geometry(bw, bh, width, height)
            case["uncrop"] = crop_geometry(width, height, bw, bh)
        out.append(case)

    # Hand-picked: each border, widening both ways, clamping, padding larger than the image.
    add("left_border", 100, 80, [[0, 30, 10, 10]], 8, 64, 64)
    add("right_border", 100, 80, [[90, 30, 10, 10]], 8, 64, 64)
    add("top_border", 100, 80, [[40, 0, 10, 10]], 8, 64, 64)
    add("bottom_border", 100, 80, [[40, 70, 10, 10]], 8, 64, 64)
    add("corner_top_left", 100, 80, [[0, 0, 5, 5]], 4, 64, 64)
    add("corner_bottom_right", 100, 80, [[95, 75, 5, 5]], 4, 64, 64)
    add("wide_mask_widen_height", 200, 200, [[20, 90, 120, 10]], 0, 64, 64)
    add("tall_mask_widen_width", 200, 200, [[90, 20, 10, 120]], 0, 64, 64)
    add("wide_mask_tall_working", 200, 200, [[20, 90, 120, 10]], 4, 512, 768)
    add("tall_mask_wide_working", 200, 200, [[90, 20, 10, 120]], 4, 768, 512)
    add("padding_larger_than_image", 60, 40, [[25, 15, 10, 10]], 500, 64, 64)
    add("padding_zero", 60, 40, [[25, 15, 10, 10]], 0, 64, 64)
    add("full_mask", 96, 80, [[0, 0, 96, 80]], 8, 64, 64)
    add("one_pixel", 50, 50, [[17, 33, 1, 1]], 0, 64, 64)
    add("one_pixel_padded", 50, 50, [[17, 33, 1, 1]], 3, 64, 64)
    add("widening_exceeds_height", 300, 40, [[10, 10, 280, 10]], 4, 64, 64)
    add("widening_exceeds_width", 40, 300, [[10, 10, 10, 280]], 4, 64, 64)
    add("two_rects", 128, 96, [[10, 10, 5, 5], [100, 70, 8, 8]], 2, 64, 64)
    add("odd_canvas", 67, 45, [[30, 12, 20, 14]], 8, 64, 64)
    add("context_extends", 96, 80, [[50, 30, 12, 10]], 8, 64, 64, context=[4, 50, 30, 40])
    add("context_inside", 96, 80, [[50, 30, 12, 10]], 8, 64, 64, context=[52, 32, 4, 4])
    add("context_outside_image", 96, 80, [[50, 30, 12, 10]], 8, 64, 64, context=[-40, -40, 30, 30])
    add("context_partly_outside", 96, 80, [[50, 30, 12, 10]], 8, 64, 64, context=[-10, -10, 30, 30])
    add("context_whole_image", 96, 80, [[50, 30, 12, 10]], 0, 64, 64, context=[0, 0, 96, 80])
    add("empty_mask", 64, 64, [], 8, 64, 64)
    # Random: sizes, 1-3 rectangles, paddings, working sizes, sometimes a context box.
    works = [(64, 64), (512, 512), (512, 768), (768, 512), (1024, 1024), (832, 1216), (96, 64), (40, 88)]
    for n in range(40):
        cw, ch = rng.randint(16, 400), rng.randint(16, 400)
        rects = []
        for _ in range(rng.randint(1, 3)):
            w, h = rng.randint(1, max(1, cw // 2)), rng.randint(1, max(1, ch // 2))
            rects.append([rng.randint(0, cw - w), rng.randint(0, ch - h), w, h])
        pad = rng.choice([0, 1, 4, 8, 16, 32, 64, 200])
        width, height = rng.choice(works)
        ctx = None
        if rng.random() < 0.4:
            cx, cy = rng.randint(-50, cw), rng.randint(-50, ch)
            ctx = [cx, cy, rng.randint(1, cw), rng.randint(1, ch)]
        add(f"random_{n:02d}", cw, ch, rects, pad, width, height, ctx)
    write_json("geometry.json", {
        "about": "only-masked geometry, no model. mask = zeros(canvas) with each mask_rects [x, y, w, h] set "
                 "to 255. bbox = A1111 get_crop_region(mask, 0); padded = get_crop_region(mask, padding) "
                 "(clamped); context_clamped = the context [x, y, w, h] clamped to the canvas (null when "
                 "absent or empty after clamping: then ignored); union = union(padded, context_clamped), "
                 "BEFORE widening; crop_region = A1111 expand_crop_region(union, width, height, canvas_width, "
                 "canvas_height) as [x1, y1, x2, y2]; paste_to = [x, y, w, h]. fit = resize_image mode 2 of "
                 "the box to width x height (resized size, paste offset, edge fill: axis, size of each fill "
                 "strip, position of the second strip); uncrop = resize_image mode 1 of width x height back to "
                 "the box. error = 'empty_mask' when the mask has no non-zero pixel.",
        "cases": out,
    })


def main():
    os.makedirs(OUT, exist_ok=True)
    only = next((w[5:] for w in sys.argv[1:] if w.startswith("only=")), None)
    what = [w for w in sys.argv[1:] if not w.startswith("only=")] or ([] if only else ["geometry", "pipeline"])
    check_blur_against_raster_fixtures()
    check_pillow_arithmetic()
    if "geometry" in what:
        geometry()
    if "pipeline" in what or only:
        pipeline(only)


if __name__ == "__main__":
    main()
