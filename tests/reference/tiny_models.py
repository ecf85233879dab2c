"""Tiny random-weight SD1.x / SD1.x-inpaint / SDXL models: configs, init, and the
diffusers <-> original-LDM key mapping.

Shared by make_tiny_models.py (writes the checkpoints) and make_references.py (loads them back
into diffusers/transformers modules). The LDM layout written here is the one real single-file
checkpoints (Civitai, the original SD/SDXL releases) use; the mapping is derived from the model
config (levels, res blocks per level, which levels have attention), never hard-coded.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS_DIR = os.path.join(ROOT, "tests", "fixtures", "models")

VOCAB = 49408
MAX_POS = 77

# --- configs -------------------------------------------------------------------------------

# SD1 CLIP-L stand-in: width 32, head size 8 (width < 256) -> 4 heads, quick_gelu.
SD1_CLIP = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=3, num_attention_heads=4)
# SDXL CLIP-L stand-in: width 32, 4 heads, quick_gelu.
SDXL_CLIP_L = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=3, num_attention_heads=4)
# SDXL OpenCLIP-G stand-in: width 48, head size 8 -> 6 heads, exact GELU, projection 40
# (non-square on purpose: the pooled width must come from text_projection's shape).
SDXL_CLIP_G = dict(hidden_size=48, intermediate_size=64, num_hidden_layers=3, num_attention_heads=6,
                   projection_dim=40)


def sd1_unet_config(in_channels: int = 4) -> dict:
    # SD1 structure shrunk: attention on every level but the last, 8 heads (SD1 rule), conv proj_in.
    return dict(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 32, 64),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=8,  # diffusers' legacy name: this is the number of heads
        norm_num_groups=32,
        use_linear_projection=False,
    )


def sdxl_unet_config() -> dict:
    # SDXL structure shrunk: no attention on level 0, transformer depth (0, 1, 2) (mid uses the
    # last level's depth), linear proj_in, head size 8 (width < 256), text_time add-embedding.
    return dict(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 32, 64),
        layers_per_block=1,
        transformer_layers_per_block=(1, 1, 2),
        cross_attention_dim=SDXL_CLIP_L["hidden_size"] + SDXL_CLIP_G["hidden_size"],
        attention_head_dim=(4, 4, 8),  # heads per level = width / 8
        norm_num_groups=32,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=SDXL_CLIP_G["projection_dim"] + 6 * 256,
    )


def vae_config(scaling_factor: float) -> dict:
    # Four levels keep the x8 down/up-sampling of real VAEs.
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
        scaling_factor=scaling_factor,
    )


def clip_config(spec: dict, act: str) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=VOCAB,
        max_position_embeddings=MAX_POS,
        hidden_act=act,
        layer_norm_eps=1e-5,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
        **spec,
    )


# Each model kind: (unet config, VAE scaling factor, text encoders).
KINDS = {
    "sd1": dict(unet=lambda: sd1_unet_config(4), scaling=0.18215),
    "sd1_inpaint": dict(unet=lambda: sd1_unet_config(9), scaling=0.18215),
    "sdxl": dict(unet=sdxl_unet_config, scaling=0.13025),
}


# --- DDPM buffers (what SD1 files carry; ignored by loaders) --------------------------------

def ddpm_buffers() -> dict[str, torch.Tensor]:
    """LDM's register_schedule (linear_start 0.00085, linear_end 0.012, 1000 steps), float64 maths,
    stored float32 as in real files."""
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    alphas = 1.0 - betas
    ac = np.cumprod(alphas, axis=0)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    bufs = {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": np.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": np.log(np.maximum(post_var, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
    }
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in bufs.items()}


# --- random init ----------------------------------------------------------------------------

def randomize(module: torch.nn.Module, gen: torch.Generator, out_gain: dict[str, float] | None = None):
    """Deterministic init in a sane range. Norm weights ~1 and biases are random too (not 1/0), so a
    loader that drops or swaps them produces visibly different outputs."""
    out_gain = out_gain or {}
    with torch.no_grad():
        for name, p in module.named_parameters():
            shape = p.shape
            if name.endswith("token_embedding.weight"):
                # A positive mean keeps the hidden states' mean away from 0, so A1111's emphasis
                # mean-rescaling (a ratio of means) stays well conditioned.
                v = torch.randn(shape, generator=gen) * 0.5 + 0.5
            elif name.endswith("position_embedding.weight"):
                v = torch.randn(shape, generator=gen) * 0.2
            elif p.ndim == 1 and "norm" in name and name.endswith("weight"):
                v = 1.0 + 0.1 * torch.randn(shape, generator=gen)
            elif name.endswith("final_layer_norm.bias"):
                v = 0.5 + 0.05 * torch.randn(shape, generator=gen)  # same reason as above
            elif p.ndim == 1:
                v = 0.05 * torch.randn(shape, generator=gen)
            else:
                fan_in = int(np.prod(shape[1:]))
                v = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
            v = v * out_gain.get(name, 1.0)
            # The fixtures are stored in float16: keep exactly the values the file holds.
            p.copy_(v.to(torch.float16).to(torch.float32))


# --- diffusers -> LDM key mapping ------------------------------------------------------------

_UNET_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
                ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection")]


def _resnet_unet(rest: str) -> str:
    for a, b in _UNET_RESNET:
        if rest.startswith(a + "."):
            return b + rest[len(a):]
    raise KeyError(rest)


def unet_key_map(cfg: dict) -> callable:
    """Returns f(diffusers_key) -> LDM key (without the model.diffusion_model. prefix)."""
    n_res = cfg["layers_per_block"]
    levels = len(cfg["block_out_channels"])
    up_has_attn = ["CrossAttn" in t for t in cfg["up_block_types"]]

    top = {
        "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
        "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
    }

    def f(k: str) -> str:
        for a, b in top.items():
            if k.startswith(a + "."):
                return b + k[len(a):]
        parts = k.split(".")
        if parts[0] == "down_blocks":
            lvl = int(parts[1])
            kind, j = parts[2], int(parts[3])
            rest = ".".join(parts[4:])
            base = 1 + lvl * (n_res + 1)
            if kind == "resnets":
                return f"input_blocks.{base + j}.0.{_resnet_unet(rest)}"
            if kind == "attentions":
                return f"input_blocks.{base + j}.1.{rest}"
            if kind == "downsamplers":  # downsamplers.0.conv.X
                assert lvl < levels - 1
                return f"input_blocks.{base + n_res}.0.op.{'.'.join(parts[5:])}"
        if parts[0] == "mid_block":
            kind, j = parts[1], int(parts[2])
            rest = ".".join(parts[3:])
            if kind == "resnets":
                return f"middle_block.{2 * j}.{_resnet_unet(rest)}"
            if kind == "attentions":
                return f"middle_block.1.{rest}"
        if parts[0] == "up_blocks":
            lvl = int(parts[1])
            kind, j = parts[2], int(parts[3])
            rest = ".".join(parts[4:])
            base = lvl * (n_res + 1)
            if kind == "resnets":
                return f"output_blocks.{base + j}.0.{_resnet_unet(rest)}"
            if kind == "attentions":
                return f"output_blocks.{base + j}.1.{rest}"
            if kind == "upsamplers":  # upsamplers.0.conv.X, in the last block of the level
                idx = 2 if up_has_attn[lvl] else 1
                return f"output_blocks.{base + n_res}.{idx}.{'.'.join(parts[4:])}"
        raise KeyError(k)

    return f


def vae_key_map(cfg: dict) -> callable:
    n_up = len(cfg["up_block_types"])

    def resnet(rest: str) -> str:
        return rest.replace("conv_shortcut", "nin_shortcut")

    def attn(rest: str) -> str:
        for a, b in [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]:
            if rest.startswith(a + "."):
                return b + rest[len(a):]
        raise KeyError(rest)

    def f(k: str) -> str:
        parts = k.split(".")
        if parts[0] in ("quant_conv", "post_quant_conv"):
            return k
        side = parts[0]
        p = parts[1:]
        if p[0] in ("conv_in", "conv_out"):
            return k
        if p[0] == "conv_norm_out":
            return f"{side}.norm_out.{p[1]}"
        if p[0] == "down_blocks":
            i = int(p[1])
            if p[2] == "resnets":
                return f"{side}.down.{i}.block.{p[3]}.{resnet('.'.join(p[4:]))}"
            if p[2] == "downsamplers":
                return f"{side}.down.{i}.downsample.{'.'.join(p[4:])}"
        if p[0] == "up_blocks":
            i = n_up - 1 - int(p[1])
            if p[2] == "resnets":
                return f"{side}.up.{i}.block.{p[3]}.{resnet('.'.join(p[4:]))}"
            if p[2] == "upsamplers":
                return f"{side}.up.{i}.upsample.{'.'.join(p[4:])}"
        if p[0] == "mid_block":
            if p[1] == "resnets":
                return f"{side}.mid.block_{int(p[2]) + 1}.{resnet('.'.join(p[3:]))}"
            if p[1] == "attentions":
                return f"{side}.mid.attn_1.{attn('.'.join(p[3:]))}"
        raise KeyError(k)

    return f


def unet_to_ldm(unet: UNet2DConditionModel, cfg: dict) -> dict[str, torch.Tensor]:
    f = unet_key_map(cfg)
    return {"model.diffusion_model." + f(k): v for k, v in unet.state_dict().items()}


def vae_to_ldm(vae: AutoencoderKL, cfg: dict) -> dict[str, torch.Tensor]:
    f = vae_key_map(cfg)
    out = {}
    for k, v in vae.state_dict().items():
        lk = f(k)
        if ".mid.attn_1." in lk and v.ndim == 2:
            v = v[:, :, None, None]  # LDM's AttnBlock uses 1x1 convolutions
        out["first_stage_model." + lk] = v
    return out


def hf_clip_to_ldm(clip: CLIPTextModel, prefix: str) -> dict[str, torch.Tensor]:
    """CLIPTextModel (flattened in transformers >= 5.6: keys have no text_model. prefix) ->
    `<prefix>text_model.*`, plus the int64 position_ids real files carry."""
    out = {}
    for k, v in clip.state_dict().items():
        k = k.removeprefix("text_model.")
        out[prefix + "text_model." + k] = v
    out[prefix + "text_model.embeddings.position_ids"] = torch.arange(MAX_POS, dtype=torch.int64)[None]
    return out


def open_clip_to_ldm(clip: CLIPTextModelWithProjection, prefix: str) -> dict[str, torch.Tensor]:
    """HF CLIPTextModelWithProjection -> OpenCLIP TextTransformer layout (fused in_proj,
    text_projection stored [width, proj], logit_scale)."""
    sd = {k.removeprefix("text_model."): v for k, v in clip.state_dict().items()}
    out = {
        prefix + "token_embedding.weight": sd["embeddings.token_embedding.weight"],
        prefix + "positional_embedding": sd["embeddings.position_embedding.weight"],
        prefix + "ln_final.weight": sd["final_layer_norm.weight"],
        prefix + "ln_final.bias": sd["final_layer_norm.bias"],
        prefix + "text_projection": sd["text_projection.weight"].T.contiguous(),
        prefix + "logit_scale": torch.tensor(math.log(1 / 0.07), dtype=torch.float32),
    }
    for i in range(clip.config.num_hidden_layers):
        s = f"encoder.layers.{i}."
        d = f"{prefix}transformer.resblocks.{i}."
        out[d + "ln_1.weight"] = sd[s + "layer_norm1.weight"]
        out[d + "ln_1.bias"] = sd[s + "layer_norm1.bias"]
        out[d + "ln_2.weight"] = sd[s + "layer_norm2.weight"]
        out[d + "ln_2.bias"] = sd[s + "layer_norm2.bias"]
        out[d + "attn.in_proj_weight"] = torch.cat([sd[s + f"self_attn.{n}_proj.weight"] for n in "qkv"], 0)
        out[d + "attn.in_proj_bias"] = torch.cat([sd[s + f"self_attn.{n}_proj.bias"] for n in "qkv"], 0)
        out[d + "attn.out_proj.weight"] = sd[s + "self_attn.out_proj.weight"]
        out[d + "attn.out_proj.bias"] = sd[s + "self_attn.out_proj.bias"]
        out[d + "mlp.c_fc.weight"] = sd[s + "mlp.fc1.weight"]
        out[d + "mlp.c_fc.bias"] = sd[s + "mlp.fc1.bias"]
        out[d + "mlp.c_proj.weight"] = sd[s + "mlp.fc2.weight"]
        out[d + "mlp.c_proj.bias"] = sd[s + "mlp.fc2.bias"]
    return out


# --- loading back (for the references) -------------------------------------------------------

class TinyModels:
    """The diffusers/transformers modules of one tiny checkpoint, float32, weights from the file."""

    def __init__(self, kind: str, unet, vae, text_encoders):
        self.kind = kind
        self.unet = unet
        self.vae = vae
        self.text_encoders = text_encoders  # [CLIPTextModel] or [CLIPTextModel, CLIPTextModelWithProjection]
        self.is_xl = kind == "sdxl"
        self.scaling = KINDS[kind]["scaling"]


def ckpt_path(kind: str) -> str:
    return os.path.join(MODELS_DIR, f"tiny_{kind}.safetensors")


def load_tiny(kind: str) -> TinyModels:
    """Loads a tiny checkpoint through diffusers' OWN single-file conversion functions."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )

    ckpt = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(ckpt_path(kind)).items()}
    ucfg = KINDS[kind]["unet"]()
    vcfg = vae_config(KINDS[kind]["scaling"])

    unet = UNet2DConditionModel(**ucfg)
    unet.load_state_dict(convert_ldm_unet_checkpoint(ckpt, unet.config), strict=True)
    vae = AutoencoderKL(**vcfg)
    vae.load_state_dict(convert_ldm_vae_checkpoint(ckpt, vae.config), strict=True)

    encs = []
    if kind != "sdxl":
        te = CLIPTextModel(clip_config(SD1_CLIP, "quick_gelu"))
        sd = {k.removeprefix("text_model."): v for k, v in convert_ldm_clip_checkpoint(ckpt).items()}
        sd.pop("embeddings.position_ids", None)
        te.load_state_dict(sd, strict=True)
        encs.append(te)
    else:
        te1 = CLIPTextModel(clip_config(SDXL_CLIP_L, "quick_gelu"))
        sd = {k.removeprefix("text_model."): v for k, v in convert_ldm_clip_checkpoint(ckpt).items()}
        sd.pop("embeddings.position_ids", None)
        te1.load_state_dict(sd, strict=True)
        te2 = CLIPTextModelWithProjection(clip_config(SDXL_CLIP_G, "gelu"))
        sd2 = convert_open_clip_checkpoint(te2, ckpt, prefix="conditioner.embedders.1.model.")
        sd2.pop("logit_scale", None)
        te2.load_state_dict(sd2, strict=True)
        encs += [te1, te2]
    for m in [unet, vae, *encs]:
        m.eval()
        m.requires_grad_(False)
    return TinyModels(kind, unet, vae, encs)
