"""A1111's text conditioning and k-diffusion driving, reproduced on diffusers/transformers modules
exactly as /work/shared/design/fidelity.md (the contract) states.

Ported from AUTOMATIC1111/stable-diffusion-webui: modules/prompt_parser.py
(parse_prompt_attention), modules/sd_hijack_clip.py (tokenize_line: 75-token chunks, comma
back-tracking, BREAK; process_tokens: pad-after-EOS for OpenCLIP), modules/sd_emphasis.py
("Original" emphasis), modules/sd_samplers_cfg_denoiser.py (CFG on the denoised values).
The tokenizers are ports of transformers' slow CLIPTokenizer with ftfy installed (A1111's CLIP-L
tokenizer) and open_clip's SimpleTokenizer (SDXL's second encoder); both share one BPE.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from dataclasses import dataclass, field

import ftfy
import numpy as np
import regex
import torch


def _import_k_diffusion():
    """k_diffusion/__init__.py imports its training/evaluation modules (OpenAI `clip`, wandb, ...),
    which the samplers do not need: register a bare package and import only the two modules."""
    import importlib
    import importlib.util
    import sys
    import types

    if "k_diffusion" not in sys.modules:
        spec = importlib.util.find_spec("k_diffusion")
        pkg = types.ModuleType("k_diffusion")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["k_diffusion"] = pkg
    return importlib.import_module("k_diffusion.sampling"), importlib.import_module("k_diffusion.external")


ks, _kd_external = _import_k_diffusion()
DiscreteEpsDDPMDenoiser = _kd_external.DiscreteEpsDDPMDenoiser

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKENIZER_DIR = os.environ.get("PENTIMENTO_CLIP_TOKENIZER", "/work/shared/clip-tokenizer")

BOS, EOS, COMMA = 49406, 49407, 267
CHUNK = 75
COMMA_BACKTRACK = 20  # A1111's default opts.comma_padding_backtrack


# --- tokenizers ------------------------------------------------------------------------------

def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _whitespace_clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class ClipTokenizer:
    """CLIP BPE. `open_clip=False`: transformers' slow CLIPTokenizer with ftfy (what A1111 uses for
    SD1 and SDXL's CLIP-L): whitespace_clean(ftfy.fix_text(t)).lower().
    `open_clip=True`: open_clip's SimpleTokenizer (SDXL's OpenCLIP-G): ftfy.fix_text, then
    html.unescape twice, strip, whitespace_clean, lower."""

    def __init__(self, open_clip: bool = False):
        with open(os.path.join(TOKENIZER_DIR, "vocab.json"), encoding="utf-8") as f:
            self.encoder: dict[str, int] = json.load(f)
        with open(os.path.join(TOKENIZER_DIR, "merges.txt"), encoding="utf-8") as f:
            merges = f.read().strip().split("\n")[1 : 49152 - 256 - 2 + 1]
        self.ranks = {tuple(m.split()): i for i, m in enumerate(merges)}
        self.byte_encoder = _bytes_to_unicode()
        self.open_clip = open_clip
        special = ("<start_of_text>|<end_of_text>" if open_clip else r"<\|startoftext\|>|<\|endoftext\|>")
        self.pat = regex.compile(special + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                                 regex.IGNORECASE)
        # Both tokenizers seed their BPE cache with their own names of the two special tokens.
        names = ("<start_of_text>", "<end_of_text>") if open_clip else ("<|startoftext|>", "<|endoftext|>")
        self.special = {names[0]: BOS, names[1]: EOS}
        self.cache: dict[str, str] = {}

    def clean(self, text: str) -> str:
        if self.open_clip:
            text = ftfy.fix_text(text)
            text = html.unescape(html.unescape(text))
            text = text.strip()
            return _whitespace_clean(text).lower()
        return _whitespace_clean(ftfy.fix_text(text)).lower()

    def bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = set(zip(word, word[1:]))
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new_word: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = set(zip(word, word[1:]))
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for tok in self.pat.findall(self.clean(text)):
            if tok in self.special:
                ids.append(self.special[tok])
                continue
            tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
            ids.extend(self.encoder.get(t, EOS) for t in self.bpe(tok).split(" "))
        return ids


# --- prompt parsing (A1111 prompt_parser.parse_prompt_attention, current master) -------------

re_attention = re.compile(r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""", re.X)

re_break = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_prompt_attention(text: str) -> list[list]:
    res: list[list] = []
    round_brackets: list[int] = []
    square_brackets: list[int] = []
    round_bracket_multiplier = 1.1
    square_bracket_multiplier = 1 / 1.1

    def multiply_range(start_position, multiplier):
        for p in range(start_position, len(res)):
            res[p][1] *= multiplier

    for m in re_attention.finditer(text):
        text = m.group(0)
        weight = m.group(1)
        if text.startswith("\\"):
            res.append([text[1:], 1.0])
        elif text == "(":
            round_brackets.append(len(res))
        elif text == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), float(weight))
        elif text == ")" and round_brackets:
            multiply_range(round_brackets.pop(), round_bracket_multiplier)
        elif text == "]" and square_brackets:
            multiply_range(square_brackets.pop(), square_bracket_multiplier)
        else:
            parts = re.split(re_break, text)
            for i, part in enumerate(parts):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])

    for pos in round_brackets:
        multiply_range(pos, round_bracket_multiplier)
    for pos in square_brackets:
        multiply_range(pos, square_bracket_multiplier)
    if len(res) == 0:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


# --- chunking (A1111 FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line, no embeddings) -----

@dataclass
class Chunk:
    tokens: list[int] = field(default_factory=list)
    multipliers: list[float] = field(default_factory=list)


def tokenize_line(line: str, tok: ClipTokenizer) -> list[Chunk]:
    parsed = parse_prompt_attention(line)
    tokenized = [tok.encode(text) for text, _ in parsed]
    chunks: list[Chunk] = []
    chunk = Chunk()
    last_comma = -1

    def next_chunk():
        nonlocal chunk, last_comma
        to_add = CHUNK - len(chunk.tokens)
        if to_add > 0:
            chunk.tokens += [EOS] * to_add
            chunk.multipliers += [1.0] * to_add
        chunk.tokens = [BOS] + chunk.tokens + [EOS]
        chunk.multipliers = [1.0] + chunk.multipliers + [1.0]
        last_comma = -1
        chunks.append(chunk)
        chunk = Chunk()

    for tokens, (text, weight) in zip(tokenized, parsed):
        if text == "BREAK" and weight == -1:
            next_chunk()
            continue
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if token == COMMA:
                last_comma = len(chunk.tokens)
            elif (COMMA_BACKTRACK != 0 and len(chunk.tokens) == CHUNK and last_comma != -1
                  and len(chunk.tokens) - last_comma <= COMMA_BACKTRACK):
                break_location = last_comma + 1
                reloc_tokens = chunk.tokens[break_location:]
                reloc_mults = chunk.multipliers[break_location:]
                chunk.tokens = chunk.tokens[:break_location]
                chunk.multipliers = chunk.multipliers[:break_location]
                next_chunk()
                chunk.tokens = reloc_tokens
                chunk.multipliers = reloc_mults
            if len(chunk.tokens) == CHUNK:
                next_chunk()
            chunk.tokens.append(token)
            chunk.multipliers.append(weight)
            position += 1

    if chunk.tokens or not chunks:
        next_chunk()
    return chunks


# --- text encoding ---------------------------------------------------------------------------

def emphasis_original(z: torch.Tensor, multipliers: list[float]) -> torch.Tensor:
    """sd_emphasis.EmphasisOriginal.after_transformers for a batch of one chunk."""
    mult = torch.asarray([multipliers])  # float32, as A1111's torch.asarray of python floats
    original_mean = z.mean()
    z = z * mult.reshape(mult.shape + (1,)).expand(z.shape)
    new_mean = z.mean()
    return z * (original_mean / new_mean)


def pad_after_eos(tokens: list[int], pad: int) -> list[int]:
    """process_tokens for encoders whose pad id differs from EOS (OpenCLIP: 0)."""
    i = tokens.index(EOS)
    return tokens[: i + 1] + [pad] * (len(tokens) - i - 1)


@dataclass
class Conditioning:
    context: torch.Tensor  # [1, 77 * chunks, C]
    pooled: torch.Tensor | None  # SDXL: [1, proj]
    chunks: list[list[Chunk]]  # per text encoder
    encoder_ids: list[list[list[int]]]  # ids actually fed to each encoder, per chunk


@torch.no_grad()
def encode_prompt(models, prompt: str, clip_skip: int = 1) -> Conditioning:
    if not models.is_xl:
        te = models.text_encoders[0]
        chunks = tokenize_line(prompt, TOK_CLIP)
        zs = []
        for c in chunks:
            out = te(torch.asarray([c.tokens]), output_hidden_states=True)
            if clip_skip > 1:
                z = te.final_layer_norm(out.hidden_states[-clip_skip])
            else:
                z = out.last_hidden_state
            zs.append(emphasis_original(z, c.multipliers))
        return Conditioning(torch.hstack(zs), None, [chunks], [[c.tokens for c in chunks]])

    # SDXL: CLIP-L penultimate (pad = EOS) ++ OpenCLIP-G penultimate (pad = 0 after the first EOS);
    # clip skip is ignored (always penultimate), as in A1111.
    te_l, te_g = models.text_encoders
    chunks_l = tokenize_line(prompt, TOK_CLIP)
    chunks_g = tokenize_line(prompt, TOK_OPEN_CLIP)
    zl = []
    for c in chunks_l:
        out = te_l(torch.asarray([c.tokens]), output_hidden_states=True)
        zl.append(emphasis_original(out.hidden_states[-2], c.multipliers))
    zg = []
    ids_g = []
    pooled = None
    for c in chunks_g:
        ids = pad_after_eos(c.tokens, 0)
        ids_g.append(ids)
        out = te_g(torch.asarray([ids]), output_hidden_states=True)
        if pooled is None:
            pooled = out.text_embeds  # ln_final -> first EOS -> text_projection, first chunk only
        zg.append(emphasis_original(out.hidden_states[-2], c.multipliers))
    context = torch.cat([torch.hstack(zl), torch.hstack(zg)], dim=-1)
    return Conditioning(context, pooled, [chunks_l, chunks_g], [[c.tokens for c in chunks_l], ids_g])


def sdxl_time_ids(height: int, width: int) -> torch.Tensor:
    """original size (H, W), crop top-left (0, 0), target size (H, W)."""
    return torch.tensor([[height, width, 0, 0, height, width]], dtype=torch.float32)


# --- denoiser, schedules, samplers -----------------------------------------------------------

def alphas_cumprod() -> torch.Tensor:
    """LDM register_schedule: float64 maths, stored float32."""
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    return torch.tensor(np.cumprod(1.0 - betas, axis=0), dtype=torch.float32)


class UNetDenoiser(DiscreteEpsDDPMDenoiser):
    """k-diffusion CompVisDenoiser on a diffusers UNet: denoised = x - sigma * eps(x * c_in, t),
    t non-quantized. `image_cond` (9-channel inpaint models) is concatenated after x * c_in."""

    def __init__(self, models):
        super().__init__(models.unet, alphas_cumprod(), quantize=False)
        self.models = models

    def get_eps(self, x, t, cond=None, added=None, image_cond=None):
        if image_cond is not None:
            x = torch.cat([x, image_cond], dim=1)
        kw = {"added_cond_kwargs": added} if added is not None else {}
        return self.inner_model(x, t, encoder_hidden_states=cond, **kw).sample


def cfg_model(den: UNetDenoiser, cond: Conditioning, uncond: Conditioning, cfg: float, added_c=None,
              added_u=None, image_cond=None, post=None):
    """A1111 CFGDenoiser: cond and uncond evaluated separately (their token counts may differ),
    combined on the denoised values; `post` hooks the inpaint blend later."""

    @torch.no_grad()
    def fn(x, sigma):
        dc = den(x, sigma, cond=cond.context, added=added_c, image_cond=image_cond)
        du = den(x, sigma, cond=uncond.context, added=added_u, image_cond=image_cond)
        d = du + (dc - du) * cfg
        return post(d) if post is not None else d

    return fn


def schedule(den: UNetDenoiser, name: str, n: int) -> torch.Tensor:
    smin, smax = den.sigmas[0].item(), den.sigmas[-1].item()
    if name == "normal":
        return den.get_sigmas(n)
    if name == "karras":
        return ks.get_sigmas_karras(n, smin, smax, rho=7.0)
    if name == "exponential":
        return ks.get_sigmas_exponential(n, smin, smax)
    if name == "sgm_uniform":
        t = torch.linspace(len(den.sigmas) - 1, 0, n + 1)[:-1]
        return ks.append_zero(den.t_to_sigma(t))
    if name == "simple":
        table = den.sigmas
        sig = [float(table[999 - int(i * 1000 / n)]) for i in range(n)] + [0.0]
        return torch.tensor(sig, dtype=torch.float32)
    raise ValueError(name)


@torch.no_grad()
def sample_lcm(model, x, sigmas, noise_sampler):
    """ComfyUI's LCM: x = denoised, then + next_sigma * noise while next_sigma > 0."""
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        x = model(x, sigmas[i] * s_in)
        if sigmas[i + 1] > 0:
            x = x + sigmas[i + 1] * noise_sampler(sigmas[i], sigmas[i + 1])
    return x


def run_sampler(name: str, model, x, sigmas, noise_sampler):
    d = dict(disable=True)
    if name in ("euler", "ddim"):  # ComfyUI's ddim is the Euler update
        return ks.sample_euler(model, x, sigmas, **d)
    if name == "euler_a":
        return ks.sample_euler_ancestral(model, x, sigmas, eta=1.0, s_noise=1.0, noise_sampler=noise_sampler, **d)
    if name == "heun":
        return ks.sample_heun(model, x, sigmas, **d)
    if name == "dpm_2":
        return ks.sample_dpm_2(model, x, sigmas, **d)
    if name == "lms":
        return ks.sample_lms(model, x, sigmas, order=4, **d)
    if name == "dpmpp_2m":
        return ks.sample_dpmpp_2m(model, x, sigmas, **d)
    if name == "dpmpp_2m_sde":
        return ks.sample_dpmpp_2m_sde(model, x, sigmas, eta=1.0, s_noise=1.0, noise_sampler=noise_sampler,
                                      solver_type="midpoint", **d)
    if name == "dpmpp_sde":
        return ks.sample_dpmpp_sde(model, x, sigmas, eta=1.0, s_noise=1.0, noise_sampler=noise_sampler, r=1 / 2, **d)
    if name == "lcm":
        return sample_lcm(model, x, sigmas, noise_sampler)
    raise ValueError(name)


class ImageNoise:
    """Image i: torch.Generator('cpu').manual_seed(seed + i); the first randn is the initial
    noise, every later call of the noise sampler one more randn of the latent's shape."""

    def __init__(self, seed: int, shape: tuple[int, ...]):
        self.gen = torch.Generator("cpu").manual_seed(seed)
        self.shape = shape
        self.draws = 0

    def randn(self) -> torch.Tensor:
        self.draws += 1
        return torch.randn(self.shape, generator=self.gen)

    def sampler(self, sigma, sigma_next):
        return self.randn()


# --- VAE ---------------------------------------------------------------------------------------

@torch.no_grad()
def vae_encode_mean(models, rgb_u8: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(rgb_u8.astype(np.float32) / 255.0 * 2.0 - 1.0).permute(2, 0, 1)[None]
    return models.vae.encode(x).latent_dist.mean * models.scaling


@torch.no_grad()
def vae_decode_u8(models, z: torch.Tensor) -> np.ndarray:
    x = models.vae.decode(z / models.scaling).sample
    x = torch.clamp((x + 1.0) / 2.0, min=0.0, max=1.0)
    x = 255.0 * np.moveaxis(x[0].numpy(), 0, 2)  # float32, as A1111
    return x.astype(np.uint8)  # truncation


TOK_CLIP = ClipTokenizer(open_clip=False)
TOK_OPEN_CLIP = ClipTokenizer(open_clip=True)
