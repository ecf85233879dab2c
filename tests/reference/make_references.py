"""Writes the SD engine reference fixtures under tests/fixtures/sd/ from the tiny checkpoints
(tests/fixtures/models/, made by make_tiny_models.py), driving diffusers/transformers modules with
k-diffusion exactly as fidelity.md says (see a1111.py).

Run: /work/refvenv/bin/python tests/reference/make_references.py [modules] [tokenizer] [prompts] [pipeline]
(no argument: everything). Deterministic: re-running rewrites identical files.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
import a1111  # noqa: E402
import tiny_models as tm  # noqa: E402

OUT = os.path.join(tm.ROOT, "tests", "fixtures", "sd")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
torch.use_deterministic_algorithms(True)


def save_tensors(name: str, tensors: dict[str, torch.Tensor], meta: dict | None = None):
    tensors = {k: v.detach().clone().contiguous() for k, v in tensors.items()}
    # One metadata entry (a JSON string): safetensors writes the metadata map in hash order.
    md = {"about": json.dumps(meta, sort_keys=True)} if meta else None
    save_file(tensors, os.path.join(OUT, name), metadata=md)
    print("wrote", name, f"({len(tensors)} tensors)")


def write_json(name: str, obj: dict):
    """Top-level keys on their own lines, one list item (case/job) per line: small and diffable."""
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


def fixed_randn(seed: int, shape) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))


# --- a. module-level outputs -------------------------------------------------------------------

MODULE_PROMPTS = [
    "a photo of a cat",
    "",
    "score_9, a red fox in the snow, highly detailed, 4k",
]
UNET_T = 537.25


@torch.no_grad()
def modules():
    for kind in ["sd1", "sd1_inpaint", "sdxl"]:
        m = tm.load_tiny(kind)
        t: dict[str, torch.Tensor] = {}
        # Text encoders: the raw encoder outputs for one 77-token chunk (no emphasis).
        for i, p in enumerate(MODULE_PROMPTS):
            chunk_l = a1111.tokenize_line(p, a1111.TOK_CLIP)[0]
            ids = torch.asarray([chunk_l.tokens], dtype=torch.int64)
            out = m.text_encoders[0](ids, output_hidden_states=True)
            if not m.is_xl:
                t[f"text.{i}.ids"] = ids
                t[f"text.{i}.last_hidden_state"] = out.last_hidden_state
                t[f"text.{i}.clip_skip_2"] = m.text_encoders[0].final_layer_norm(out.hidden_states[-2])
                for j, h in enumerate(out.hidden_states):
                    t[f"text.{i}.hidden_states.{j}"] = h  # 0 = embeddings, j = after layer j
            else:
                t[f"text_l.{i}.ids"] = ids
                t[f"text_l.{i}.penultimate"] = out.hidden_states[-2]
                for j, h in enumerate(out.hidden_states):
                    t[f"text_l.{i}.hidden_states.{j}"] = h
                chunk_g = a1111.tokenize_line(p, a1111.TOK_OPEN_CLIP)[0]
                ids_g = torch.asarray([a1111.pad_after_eos(chunk_g.tokens, 0)], dtype=torch.int64)
                og = m.text_encoders[1](ids_g, output_hidden_states=True)
                t[f"text_g.{i}.ids"] = ids_g
                t[f"text_g.{i}.penultimate"] = og.hidden_states[-2]
                t[f"text_g.{i}.last_hidden_state"] = og.last_hidden_state  # after ln_final
                t[f"text_g.{i}.pooled"] = og.text_embeds
                for j, h in enumerate(og.hidden_states):
                    t[f"text_g.{i}.hidden_states.{j}"] = h
        # UNet: one eps call at a non-integer timestep, square and non-square latents.
        cin = m.unet.config.in_channels
        ctx_dim = m.unet.config.cross_attention_dim
        for name, (h, w) in {"sq": (8, 8), "ns": (6, 9)}.items():
            x = fixed_randn(11, (1, cin, h, w))
            ctx = fixed_randn(12, (1, 77, ctx_dim))
            kw = {}
            if m.is_xl:
                pooled = fixed_randn(13, (1, tm.SDXL_CLIP_G["projection_dim"]))
                time_ids = a1111.sdxl_time_ids(h * 8, w * 8)
                kw["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
                # y = [pooled, e(H), e(W), e(0), e(0), e(H), e(W)], e = 256-d [cos, sin]
                te = m.unet.add_time_proj(time_ids.flatten()).reshape(1, -1)
                t[f"unet.{name}.pooled"] = pooled
                t[f"unet.{name}.time_ids"] = time_ids
                t[f"unet.{name}.y"] = torch.cat([pooled, te], dim=-1)
            t[f"unet.{name}.x"] = x
            t[f"unet.{name}.t"] = torch.tensor([UNET_T])
            t[f"unet.{name}.context"] = ctx
            t[f"unet.{name}.eps"] = m.unet(x, torch.tensor([UNET_T]), encoder_hidden_states=ctx, **kw).sample
        # Context of two chunks (154 tokens) through the UNet too.
        x = fixed_randn(11, (1, cin, 8, 8))
        ctx = fixed_randn(14, (1, 154, ctx_dim))
        kw = {}
        if m.is_xl:
            kw["added_cond_kwargs"] = {"text_embeds": fixed_randn(13, (1, tm.SDXL_CLIP_G["projection_dim"])),
                                       "time_ids": a1111.sdxl_time_ids(64, 64)}
        t["unet.ctx154.x"] = x
        t["unet.ctx154.context"] = ctx
        t["unet.ctx154.t"] = torch.tensor([UNET_T])
        t["unet.ctx154.eps"] = m.unet(x, torch.tensor([UNET_T]), encoder_hidden_states=ctx, **kw).sample
        # VAE: encoder posterior mean (unscaled) and decoder output (unclamped), both sizes.
        for name, (h, w) in {"sq": (64, 64), "ns": (48, 72)}.items():
            img = fixed_randn(15, (1, 3, h, w)).clamp(-1, 1)
            z = fixed_randn(16, (1, 4, h // 8, w // 8))
            t[f"vae.{name}.image"] = img
            t[f"vae.{name}.encoder_mean"] = m.vae.encode(img).latent_dist.mean
            t[f"vae.{name}.latent"] = z
            t[f"vae.{name}.decoded"] = m.vae.decode(z).sample
        save_tensors(f"modules_{kind}.safetensors", t, {"unet_t": UNET_T, "checkpoint": f"tiny_{kind}.safetensors"})


# --- b. tokenizer ids --------------------------------------------------------------------------

HANDWRITTEN = [
    "", " ", "a", "A photo of a cat", "score_9, score_8_up, a cat (wearing a hat:1.2)",
    "masterpiece,best quality,1girl,solo", "hello   world\t\tfoo\nbar", "  leading and trailing  ",
    "It's a dog's life; we'll see, they're here, I'm done, you've won, he'd go",
    "IT'S LOUD, WE'LL SEE", "café naïve résumé façade", "Ελληνικά Русский текст", "日本語のテキスト 中文",
    "한국어", "emoji 😀🎨🖌️ 👩‍🎨 🇫🇷", "numbers 1234567890 3.14159 1,000,000 2nd 3rd 4th",
    "&amp; &lt;b&gt; &quot;quoted&quot; &#39;apos&#39; &amp;amp;", "Tom &amp; Jerry", "<b>bold</b> & <i>it</i>",
    "“curly quotes” ‘single’ — em dash – en dash …", "ﬁne ﬂowers", "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ",
    "non\u00a0breaking\u2009thin\u3000ideographic", "zero\u200bwidth\u200cjoiner\u200d",
    "combining e\u0301 vs \u00e9", "tab\tand\rcarriage", "ÃƒÂ© mojibake Ã©", "c++ c# f# .net node.js",
    "(((emphasis))) [[de-emphasis]] (word:1.3) \\(escaped\\)", "BREAK", "a BREAK b",
    "!!!???...,,,;;;:::", "http://example.com/path?q=1&r=2", "user@example.com #hashtag @mention",
    "$100 €50 £20 ¥1000 ₹", "50% off, 3/4 view, 16:9, 1920x1080", "x" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "the the the the the", "snake_case camelCase PascalCase kebab-case", "<|endoftext|>",
    "İstanbul ß straße ǅ ﬀ", "\u2163 roman numeral", "½ ⅓ ¼ ² ³", "🏳️‍🌈 🧑🏽‍🚀",
]

WORDS = ("a an the of in on with and or but portrait landscape photo painting oil watercolor sketch "
         "girl boy woman man cat dog fox dragon castle forest mountain river city street night day "
         "sunset sunrise cinematic lighting volumetric fog detailed intricate masterpiece best quality "
         "highres 8k 4k uhd hdr bokeh depth field sharp focus trending artstation by greg rutkowski "
         "alphonse mucha studio ghibli anime manga realistic photorealistic hyperrealistic octane render "
         "unreal engine red green blue yellow purple orange black white golden silver blonde hair eyes "
         "smiling looking at viewer full body close-up wide shot from above below behind dynamic pose "
         "nsfw sfw lowres bad anatomy hands text error missing fingers extra digit fewer digits cropped "
         "worst quality low jpeg artifacts signature watermark username blurry score_9 score_8_up "
         "score_7_up rating_safe source_anime 1girl 2boys solo multiple_views").split()
PUNCT = list(",.;:!?-_/\\|'\"`~@#$%^&*+=<>(){}[]") + [", ", ". ", " - ", "...", "!!", "??"]
UNICODE = list("éèêëàâäôöûüçñßøåæœÆØÅ") + ["日本", "中文", "한국", "Привет", "مرحبا", "שלום", "नमस्ते", "ไทย",
                                            "😀", "🎨", "👍🏽", "❤️", "🔥", "✨", "★", "♥", "→", "∞", "°", "©", "™",
                                            "“", "”", "‘", "’", "—", "–", "…", "ﬁ", "Ｆ", "ｂ", "ｃ", "①", "Ⅻ"]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&eacute;", "&#x27;", "&amp;amp;", "&copy;"]
SPACES = [" ", "  ", "\t", "\n", " \n ", "\u00a0", "\u3000", "\r\n", ""]


def generated_prompts(n: int) -> list[str]:
    rng = random.Random(20240607)
    out = []
    for k in range(n):
        style = k % 6
        length = rng.choice([1, 2, 3, 5, 8, 13, 21, 40, 90]) if style != 5 else rng.randint(80, 160)
        parts = []
        for _ in range(length):
            r = rng.random()
            if r < 0.6:
                w = rng.choice(WORDS)
                if rng.random() < 0.15:
                    w = w.upper() if rng.random() < 0.5 else w.capitalize()
                parts.append(w)
            elif r < 0.72:
                parts.append(rng.choice(PUNCT))
            elif r < 0.8:
                parts.append(str(rng.choice([rng.randint(0, 9), rng.randint(10, 99999), rng.random() * 100])))
            elif r < 0.9 and style in (1, 3, 4):
                parts.append(rng.choice(UNICODE))
            elif r < 0.95 and style in (2, 4):
                parts.append(rng.choice(ENTITIES))
            else:
                parts.append(rng.choice(SPACES))
            parts.append(rng.choice([" ", " ", " ", ", ", "", rng.choice(SPACES)]))
        out.append("".join(parts))
    return out


def tokenizer():
    prompts = HANDWRITTEN + generated_prompts(1000)
    # Cross-check the BPE port against transformers' tokenizers-backed CLIPTokenizer on the
    # already-cleaned text (it has no ftfy step of its own).
    from transformers import CLIPTokenizer

    fast = CLIPTokenizer(vocab=os.path.join(a1111.TOKENIZER_DIR, "vocab.json"),
                         merges=os.path.join(a1111.TOKENIZER_DIR, "merges.txt"))
    cases = []
    n_diff_oc = 0
    mismatch_fast = 0
    for p in prompts:
        ids = a1111.TOK_CLIP.encode(p)
        ids_oc = a1111.TOK_OPEN_CLIP.encode(p)
        ref_fast = fast(a1111.TOK_CLIP.clean(p), add_special_tokens=False)["input_ids"]
        if ref_fast != ids:
            mismatch_fast += 1
            print("BPE port vs transformers differ:", repr(p)[:80])
        case = {"prompt": p, "ids": ids}
        if ids_oc != ids:
            case["ids_open_clip"] = ids_oc
            n_diff_oc += 1
        cases.append(case)
    print(f"tokenizer: {len(cases)} prompts, {mismatch_fast} differ from transformers' BPE, "
          f"{n_diff_oc} differ between the CLIP-L and open_clip cleaning")
    assert mismatch_fast == 0
    write_json("tokenizer_ids.json", {
        "about": "ids (no BOS/EOS, no padding): transformers' slow CLIPTokenizer with ftfy, as A1111 "
                 "tokenizes for SD1 and SDXL's CLIP-L; ids_open_clip (only where different): open_clip's "
                 "SimpleTokenizer cleaning (adds html.unescape twice), SDXL's second encoder",
        "cases": cases,
    })


# --- c. prompt conditioning cases --------------------------------------------------------------

LONG_WORDS = ("a highly detailed oil painting of an ancient castle on a cliff above a stormy sea with "
              "lightning in the dark clouds and waves crashing on the rocks below while a lone knight in "
              "silver armour rides a white horse along the winding path toward the gate carrying a red "
              "banner that flutters in the wind and ravens circle the tallest tower where a single "
              "candle burns in the window")
PROMPT_CASES = [
    ("plain", "a photo of a cat"),
    ("empty", ""),
    ("paren", "a (cat) on a mat"),
    ("double_paren", "a ((cat)) on a mat"),
    ("square", "a [cat] on a mat"),
    ("weight", "a (cat:1.3) on a mat"),
    ("weight_spaces", "a (cat : 0.7 ) on a mat"),
    ("nested", "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).)"),
    ("escapes", "a \\(literal\\) \\[thing\\] and a (real) one"),
    ("unbalanced", "a (cat on [a mat"),
    ("break", "a red fox BREAK a snowy forest"),
    ("break_start", "BREAK a snowy forest"),
    ("long", LONG_WORDS + ", " + LONG_WORDS.replace("castle", "tower")),
    ("long_comma_boundary", ", ".join(["red fox"] * 24) + ", " + "a snowy forest at dawn with pine trees"),
    ("long_no_comma", " ".join(["fox"] * 80)),
    ("exact_75", " ".join(["fox"] * 75)),
    ("exact_76", " ".join(["fox"] * 76)),
    ("score_tags", "score_9, score_8_up, score_7_up, 1girl, (masterpiece:1.2), [lowres]"),
    ("html", "Tom &amp; Jerry &lt;3"),
]


@torch.no_grad()
def prompts():
    manifest = []
    for kind in ["sd1", "sdxl"]:
        m = tm.load_tiny(kind)
        tensors = {}
        for name, p in PROMPT_CASES:
            skips = [1, 2] if kind == "sd1" else [1]
            for skip in skips:
                c = a1111.encode_prompt(m, p, clip_skip=skip)
                key = f"{name}" + (f".clip_skip_{skip}" if skip > 1 else "")
                tensors[f"{key}.context"] = c.context
                if c.pooled is not None:
                    tensors[f"{key}.pooled"] = c.pooled
                if skip == 1:
                    entry = {"model": kind, "name": name, "prompt": p,
                             "parsed": a1111.parse_prompt_attention(p),
                             "context_shape": list(c.context.shape), "encoders": []}
                    for enc_chunks, enc_ids in zip(c.chunks, c.encoder_ids):
                        entry["encoders"].append([{"tokens": ids, "multipliers": ch.multipliers}
                                                  for ch, ids in zip(enc_chunks, enc_ids)])
                    manifest.append(entry)
        save_tensors(f"prompts_{kind}.safetensors", tensors)
    write_json("prompts.json", {
        "about": "A1111 prompt conditioning. encoders[e][k]: chunk k of text encoder e (SD1: CLIP-L; "
                 "SDXL: CLIP-L then OpenCLIP-G, whose ids are 0 after the first EOS) with the ids fed to "
                 "it and the per-token multipliers; tensors in prompts_<model>.safetensors as "
                 "<name>.context [1, 77*chunks, C] (+ <name>.clip_skip_2.context for SD1, "
                 "<name>.pooled for SDXL)",
        "cases": manifest,
    })


# --- d. full pipeline ------------------------------------------------------------------------

SAMPLERS = ["euler", "euler_a", "heun", "dpm_2", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_sde", "lms", "ddim", "lcm"]
BASE = dict(model="sd1", prompt="a red fox in a snowy forest, highly detailed", negative="", seed=1234,
            steps=8, cfg=7.0, sampler="euler", schedule="normal", width=64, height=64, batch=1, clip_skip=1,
            mode="txt2img")
LONG_PROMPT = LONG_WORDS + ", " + LONG_WORDS.replace("castle", "tower")


def pipeline_jobs() -> list[dict]:
    jobs = []

    def add(name, **kw):
        j = dict(BASE)
        j.update(kw)
        j["name"] = name
        jobs.append(j)

    for s in SAMPLERS:
        add(f"sd1_txt2img_{s}_normal", sampler=s)
    for sched in ["karras", "exponential", "sgm_uniform", "simple"]:
        add(f"sd1_txt2img_euler_{sched}", schedule=sched)
        add(f"sd1_txt2img_dpmpp_2m_{sched}", sampler="dpmpp_2m", schedule=sched)
    add("sd1_txt2img_dpmpp_2m_sde_karras", sampler="dpmpp_2m_sde", schedule="karras")
    for strength in [0.5, 0.75]:
        add(f"sd1_img2img_euler_s{int(strength * 100)}", mode="img2img", strength=strength,
            init_image="init_64x64.png")
        add(f"sd1_img2img_dpmpp_2m_sde_s{int(strength * 100)}", mode="img2img", strength=strength,
            sampler="dpmpp_2m_sde", init_image="init_64x64.png")
    add("sd1_img2img_euler_a_s75_72x48", mode="img2img", strength=0.75, sampler="euler_a", width=72,
        height=48, init_image="init_72x48.png")
    add("sd1_txt2img_batch2", batch=2, sampler="euler_a")
    add("sd1_txt2img_negative", negative="blurry, lowres, (watermark:1.2)")
    add("sd1_txt2img_long_prompt", prompt=LONG_PROMPT, negative="blurry")
    add("sd1_txt2img_emphasis", prompt="a ((red fox)) in a [snowy] forest, (highly detailed:1.4)")
    add("sd1_txt2img_clip_skip_2", clip_skip=2)
    add("sd1_txt2img_72x48", width=72, height=48, sampler="dpmpp_2m")
    add("sd1_txt2img_break", prompt="a red fox BREAK a snowy forest", sampler="dpmpp_2m")
    add("sd1_inpaintmodel_txt2img_euler", model="sd1_inpaint")
    add("sdxl_txt2img_euler", model="sdxl", cfg=5.0)
    add("sdxl_txt2img_dpmpp_2m_sde_karras", model="sdxl", cfg=5.0, sampler="dpmpp_2m_sde", schedule="karras")
    add("sdxl_txt2img_euler_a_negative_72x48", model="sdxl", cfg=5.0, sampler="euler_a", width=72, height=48,
        negative="blurry, (lowres:1.2)")
    add("sdxl_img2img_euler_s50", model="sdxl", cfg=5.0, mode="img2img", strength=0.5,
        init_image="init_64x64.png")
    return jobs


def make_init_image(w: int, h: int) -> np.ndarray:
    """A deterministic test picture: colour gradients, a disc and a bar."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * xx / max(w - 1, 1)
    g = 255 * yy / max(h - 1, 1)
    b = 128 + 100 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    disc = (xx - w * 0.6) ** 2 + (yy - h * 0.4) ** 2 < (min(w, h) * 0.22) ** 2
    r[disc], g[disc], b[disc] = 250, 240, 30
    bar = (yy > h * 0.7) & (yy < h * 0.8)
    r[bar], g[bar], b[bar] = 20, 30, 200
    return np.clip(np.stack([r, g, b], -1).round(), 0, 255).astype(np.uint8)


def image_conditioning_txt2img(m, batch_shape, w, h):
    """A1111 txt2img on a 9-channel model: mask of ones ++ VAE mean of a mid-grey image."""
    grey = np.full((h, w, 3), 127.5, dtype=np.float64)
    x = torch.from_numpy((grey / 255.0 * 2.0 - 1.0).astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        lat = m.vae.encode(x).latent_dist.mean * m.scaling
    return torch.cat([torch.ones(1, 1, h // 8, w // 8), lat], dim=1)


@torch.no_grad()
def run_job(job: dict, models_cache: dict) -> dict:
    kind = job["model"]
    if kind not in models_cache:
        models_cache[kind] = tm.load_tiny(kind)
    m = models_cache[kind]
    den = a1111.UNetDenoiser(m)
    w, h = job["width"], job["height"]
    cond = a1111.encode_prompt(m, job["prompt"], clip_skip=job["clip_skip"])
    uncond = a1111.encode_prompt(m, job["negative"], clip_skip=job["clip_skip"])
    added_c = added_u = None
    if m.is_xl:
        tid = a1111.sdxl_time_ids(h, w)
        added_c = {"text_embeds": cond.pooled, "time_ids": tid}
        added_u = {"text_embeds": uncond.pooled, "time_ids": tid}
    image_cond = None
    if m.unet.config.in_channels == 9:
        if job["mode"] != "txt2img":
            raise NotImplementedError("inpaint references come with issue 3")
        image_cond = image_conditioning_txt2img(m, None, w, h)
    model_fn = a1111.cfg_model(den, cond, uncond, job["cfg"], added_c, added_u, image_cond)
    sigmas_full = a1111.schedule(den, job["schedule"], job["steps"])
    init_latent = None
    if job["mode"] == "img2img":
        init = np.asarray(Image.open(os.path.join(OUT, job["init_image"])).convert("RGB"))
        init_latent = a1111.vae_encode_mean(m, init)
        k = math.floor(job["strength"] * job["steps"] + 1e-6)
        sigmas = sigmas_full[job["steps"] - k:]
    else:
        sigmas = sigmas_full
    images, latents, draws = [], [], []
    for i in range(job["batch"]):
        noise = a1111.ImageNoise(job["seed"] + i, (1, 4, h // 8, w // 8))
        n0 = noise.randn()
        x = init_latent + n0 * sigmas[0] if init_latent is not None else n0 * sigmas[0]
        x = a1111.run_sampler(job["sampler"], model_fn, x, sigmas, noise.sampler)
        latents.append(x)
        images.append(a1111.vae_decode_u8(m, x))
        draws.append(noise.draws)
    return dict(images=images, latents=latents, sigmas=sigmas, draws=draws, cond=cond, uncond=uncond)


def pipeline(only: str | None = None):
    for w, h in [(64, 64), (72, 48)]:
        Image.fromarray(make_init_image(w, h)).save(os.path.join(OUT, f"init_{w}x{h}.png"))
    jobs = pipeline_jobs()
    cache: dict = {}
    manifest = []
    latents = {}
    for job in jobs:
        if only and only not in job["name"]:
            continue
        r = run_job(job, cache)
        files = []
        for i, img in enumerate(r["images"]):
            fn = f"{job['name']}_{i}.png"
            Image.fromarray(img).save(os.path.join(OUT, "images", fn))
            files.append(f"images/{fn}")
            latents[f"{job['name']}.{i}"] = r["latents"][i]
        entry = dict(job)
        entry.update(files=files, sigmas=[float(s) for s in r["sigmas"]], noise_draws_per_image=r["draws"],
                     cond_tokens=int(r["cond"].context.shape[1]), uncond_tokens=int(r["uncond"].context.shape[1]),
                     vae_scaling=tm.KINDS[job["model"]]["scaling"], checkpoint=f"models/tiny_{job['model']}.safetensors")
        manifest.append(entry)
        print(job["name"], "draws", r["draws"], "latent std", float(r["latents"][0].std()))
    if only:
        return
    save_tensors("pipeline_latents.safetensors", latents)
    write_json("pipeline.json", {
        "about": "full-pipeline references: each entry's parameters, the sigmas actually run "
                 "(img2img: the tail of the full schedule), PNG files (tests/fixtures/sd/images/), "
                 "final latents (before VAE decode) in pipeline_latents.safetensors as '<name>.<i>'",
        "jobs": manifest,
    })


def main():
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    what = sys.argv[1:] or ["modules", "tokenizer", "prompts", "pipeline"]
    if "modules" in what:
        modules()
    if "tokenizer" in what:
        tokenizer()
    if "prompts" in what:
        prompts()
    if "pipeline" in what:
        pipeline()
    for w in what:
        if w.startswith("only="):
            pipeline(w[5:])


if __name__ == "__main__":
    main()
