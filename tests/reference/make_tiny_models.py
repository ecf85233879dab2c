"""Builds the tiny random-weight checkpoints under tests/fixtures/models/ in the original LDM
single-file layout (float16 tensors, int64 position_ids, the extra tensors real files carry),
then proves them valid: every checkpoint is converted back with diffusers' own single-file
conversion code and compared tensor for tensor with the modules it was made from.

Run: /work/refvenv/bin/python tests/reference/make_tiny_models.py
"""

from __future__ import annotations

import os
import sys

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, CLIPTextModelWithProjection

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models as tm  # noqa: E402

SEEDS = {"sd1": 1001, "sd1_inpaint": 1002, "sdxl": 1003}
# Output gains: eps of std ~1 like a real model; encoder latents (x scaling factor) of std ~1 so
# img2img keeps the init image; decoder output mostly inside [-1, 1] (little clamping).
UNET_GAINS = {"conv_out.weight": 1.7, "conv_out.bias": 1.7}
VAE_GAINS = {"quant_conv.weight": 12.0, "quant_conv.bias": 12.0, "decoder.conv_out.weight": 0.6,
             "decoder.conv_out.bias": 0.6}


def build(kind: str):
    gen = torch.Generator("cpu").manual_seed(SEEDS[kind])
    ucfg = tm.KINDS[kind]["unet"]()
    unet = UNet2DConditionModel(**ucfg)
    tm.randomize(unet, gen, UNET_GAINS)
    vae = AutoencoderKL(**tm.vae_config(tm.KINDS[kind]["scaling"]))
    tm.randomize(vae, gen, VAE_GAINS)
    tensors: dict[str, torch.Tensor] = {}
    tensors.update(tm.unet_to_ldm(unet, unet.config))
    tensors.update(tm.vae_to_ldm(vae, vae.config))
    encs = []
    if kind != "sdxl":
        te = CLIPTextModel(tm.clip_config(tm.SD1_CLIP, "quick_gelu"))
        tm.randomize(te, gen)
        tensors.update(tm.hf_clip_to_ldm(te, "cond_stage_model.transformer."))
        encs.append(te)
    else:
        te1 = CLIPTextModel(tm.clip_config(tm.SDXL_CLIP_L, "quick_gelu"))
        tm.randomize(te1, gen)
        te2 = CLIPTextModelWithProjection(tm.clip_config(tm.SDXL_CLIP_G, "gelu"))
        tm.randomize(te2, gen)
        tensors.update(tm.hf_clip_to_ldm(te1, "conditioner.embedders.0.transformer."))
        tensors.update(tm.open_clip_to_ldm(te2, "conditioner.embedders.1.model."))
        encs += [te1, te2]

    out = {}
    for k, v in tensors.items():
        out[k] = v.to(torch.float16).contiguous() if v.is_floating_point() else v.contiguous()
    if kind != "sdxl":
        # Tensors SD1 files carry that a loader must ignore: the DDPM buffers (float32) and the
        # EMA bookkeeping scalars.
        out.update(tm.ddpm_buffers())
        out["model_ema.decay"] = torch.tensor(0.9999, dtype=torch.float32)
        out["model_ema.num_updates"] = torch.tensor(0, dtype=torch.int32)
    else:
        out["conditioner.embedders.1.model.logit_scale"] = out["conditioner.embedders.1.model.logit_scale"].float()
    return unet, vae, encs, out


def assert_same(name: str, ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor]):
    ref = {k: v for k, v in ref.items() if not k.endswith("position_ids")}
    got = {k: v for k, v in got.items() if not k.endswith("position_ids")}
    missing = set(ref) - set(got)
    extra = set(got) - set(ref)
    assert not missing and not extra, f"{name}: missing {sorted(missing)[:5]} extra {sorted(extra)[:5]}"
    for k in ref:
        a, b = ref[k].float(), got[k].float()
        assert a.shape == b.shape, f"{name}.{k}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
        assert torch.equal(a, b), f"{name}.{k}: values differ"


def verify(kind: str, unet, vae, encs):
    """Converts the file back with diffusers' own functions and compares every tensor."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )

    ckpt = load_file(tm.ckpt_path(kind))
    for k, v in ckpt.items():
        if k.endswith("position_ids"):
            assert v.dtype == torch.int64, k
    ckpt = {k: (v.float() if v.is_floating_point() else v) for k, v in ckpt.items()}
    assert_same(f"{kind}.unet", unet.state_dict(), convert_ldm_unet_checkpoint(ckpt, unet.config))
    assert_same(f"{kind}.vae", vae.state_dict(), convert_ldm_vae_checkpoint(ckpt, vae.config))
    clip = {k.removeprefix("text_model."): v for k, v in convert_ldm_clip_checkpoint(ckpt).items()}
    assert_same(f"{kind}.clip", encs[0].state_dict(), clip)
    if kind == "sdxl":
        oc = convert_open_clip_checkpoint(encs[1], ckpt, prefix="conditioner.embedders.1.model.")
        assert_same(f"{kind}.open_clip", encs[1].state_dict(), oc)
    # And the loader the references use (strict load_state_dict through the same functions).
    tm.load_tiny(kind)
    print(f"{kind}: diffusers conversion round trip OK ({len(ckpt)} tensors)")


def main():
    os.makedirs(tm.MODELS_DIR, exist_ok=True)
    for kind in ["sd1", "sd1_inpaint", "sdxl"]:
        unet, vae, encs, tensors = build(kind)
        path = tm.ckpt_path(kind)
        # One metadata entry only: safetensors writes the metadata map in hash order.
        save_file(tensors, path, metadata={"format": "pt"})
        print(f"wrote {path}: {os.path.getsize(path) / 1e6:.2f} MB")
        verify(kind, unet, vae, encs)


if __name__ == "__main__":
    main()
