"""Writes the LoRA / LyCORIS / standalone-VAE / embedding fixtures under tests/fixtures/lora/.

The contract is /work/shared/design/fidelity.md, "LoRA (A1111 Lora extension arithmetic)" and
"Standalone VAE". Independence from the Rust code:
  * module names -> diffusers modules: diffusers' OWN kohya converter
    (`diffusers.loaders.lora_conversion_utils`: `_maybe_map_sgm_blocks_to_diffusers` for the
    LDM/sgm spelling SDXL trainers write, `_convert_unet_lora_key`, `_convert_text_encoder_lora_key`);
  * the weight difference: A1111's `lyco_helpers.py` / `network_lora.py` / `network_hada.py` /
    `network_lokr.py` ported verbatim below (`rebuild_conventional`, `rebuild_cp_decomposition`,
    `make_weight_cp`, `make_kron`, `finalize_updown`'s alpha/dim scale);
  * patched diffusers modules go back to LDM names through tiny_models.py's mapping;
  * images come from make_references.run_job (A1111 conditioning + k-diffusion) on the patched
    diffusers/transformers modules.

Outputs (all small):
  <name>.safetensors          the LoRA/LyCORIS/PEFT files, f16 like real files
  expected_<case>.safetensors patched weights, keyed `unet:<ldm name>` / `te<i>:<hf path>`, each in
                              its layer's [out, in(, k, k)] shape (f32)
  vae_*.safetensors           one tiny standalone VAE in three layouts; vae_decode.safetensors
  emb_*.safetensors           embeddings; embedding_states.safetensors
  images/*.png, lora.json     full-pipeline images and their jobs (with the chunk ids)

Run: /work/refvenv/bin/python tests/reference/lora_reference.py   (deterministic)
"""

from __future__ import annotations

import copy
import json
import os
import sys

import numpy as np
import torch
from diffusers import AutoencoderKL
from diffusers.loaders.lora_conversion_utils import (
    _convert_text_encoder_lora_key,
    _convert_unet_lora_key,
    _maybe_map_sgm_blocks_to_diffusers,
)
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
import a1111  # noqa: E402
import make_references as mr  # noqa: E402
import make_tiny_models as mtm  # noqa: E402
import tiny_models as tm  # noqa: E402

OUT = os.path.join(tm.ROOT, "tests", "fixtures", "lora")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
torch.use_deterministic_algorithms(True)


# --- A1111 arithmetic (extensions-builtin/Lora/lyco_helpers.py and network_*.py) ---------------

def rebuild_conventional(up, down, shape):
    up = up.reshape(up.size(0), -1)
    down = down.reshape(down.size(0), -1)
    return (up @ down).reshape(shape)


def rebuild_cp_decomposition(up, down, mid):
    up = up.reshape(up.size(0), -1)
    down = down.reshape(down.size(0), -1)
    return torch.einsum('n m k l, i n, m j -> i j k l', mid, up, down)


def make_weight_cp(t, wa, wb):
    temp = torch.einsum('i j k l, j r -> i r k l', t, wb)
    return torch.einsum('i j k l, i r -> r j k l', temp, wa)


def make_kron(orig_shape, w1, w2):
    if len(w2.shape) == 4:
        w1 = w1.unsqueeze(2).unsqueeze(2)
    w2 = w2.contiguous()
    return torch.kron(w1, w2).reshape(orig_shape)


def calc_scale(alpha, dim):
    return alpha / dim if (alpha is not None and dim is not None) else 1.0


def updown(w: dict, orig_weight: torch.Tensor) -> torch.Tensor:
    """The scaled difference (before the user's multiplier) of one module `w` (role -> f32)."""
    shape = orig_weight.shape
    alpha = float(w["alpha"]) if "alpha" in w else None
    if "lora_down.weight" in w:  # network_lora.NetworkModuleLora
        up, down = w["lora_up.weight"], w["lora_down.weight"]
        dim = down.shape[0]
        if "lora_mid.weight" in w:
            ud = rebuild_cp_decomposition(up, down, w["lora_mid.weight"])
        else:
            out_shape = [up.size(0), down.size(1)]
            if len(down.shape) == 4:
                out_shape += down.shape[2:]
            ud = rebuild_conventional(up, down, out_shape)
    elif "hada_w1_a" in w:  # network_hada.NetworkModuleHada
        w1a, w1b, w2a, w2b = w["hada_w1_a"], w["hada_w1_b"], w["hada_w2_a"], w["hada_w2_b"]
        dim = w1b.shape[0]
        out_shape = [w1a.size(0), w1b.size(1)]
        if "hada_t1" in w:
            out_shape = [w1a.size(1), w1b.size(1)]
            u1 = make_weight_cp(w["hada_t1"], w1a, w1b)
            out_shape += list(w["hada_t1"].shape[2:])
        else:
            if len(w1b.shape) == 4:
                out_shape += w1b.shape[2:]
            u1 = rebuild_conventional(w1a, w1b, out_shape)
        if "hada_t2" in w:
            u2 = make_weight_cp(w["hada_t2"], w2a, w2b)
        else:
            u2 = rebuild_conventional(w2a, w2b, out_shape)
        ud = u1 * u2
    elif any(k.startswith("lokr_") for k in w):  # network_lokr.NetworkModuleLokr
        dim = None
        if "lokr_w1" in w:
            w1 = w["lokr_w1"]
        else:
            w1 = w["lokr_w1_a"] @ w["lokr_w1_b"]
            dim = w["lokr_w1_b"].shape[0]
        if "lokr_w2" in w:
            w2 = w["lokr_w2"]
        else:
            w2b = w["lokr_w2_b"]
            dim = w2b.shape[0]
            w2 = (w["lokr_w2_a"] @ w2b.reshape(w2b.shape[0], -1))
            if w2b.ndim == 4:
                w2 = w2.reshape(w["lokr_w2_a"].shape[0], *w2b.shape[1:])
        out_shape = [w1.size(0) * w2.size(0), w1.size(1) * w2.size(1)]
        if len(shape) == 4:
            out_shape = shape
        ud = make_kron(out_shape, w1, w2)
    else:
        raise KeyError(sorted(w))
    # finalize_updown: reshape to the weight's shape when the sizes agree, then the scale.
    assert ud.numel() == orig_weight.numel(), (ud.shape, shape)
    return ud.reshape(shape) * calc_scale(alpha, dim)


# --- module names -> diffusers modules, by diffusers' own converter ---------------------------

def diffusers_module(kind_models, lora_name: str):
    """(component index, module path inside that component) for a kohya module name, where
    component 'unet' or a text-encoder index. Uses diffusers' converter on a dummy key."""
    key = lora_name + ".lora_down.weight"
    if lora_name.startswith("lora_unet_"):
        mapped = _maybe_map_sgm_blocks_to_diffusers({key: None}, kind_models.unet.config)
        (key,) = mapped.keys()
        name = _convert_unet_lora_key(key)
        te = "unet"
    else:
        prefix = lora_name.split("_text_model")[0] + "_"
        name = _convert_text_encoder_lora_key(key, prefix)
        te = 1 if prefix == "lora_te2_" else 0
    for suffix in (".lora.down.weight", ".lora_linear_layer.down.weight", "_lora.down.weight"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = name.replace(".processor", "")
    if name.endswith(".to_out"):
        name += ".0"
    if te != "unet":
        for a, b in [("to_q", "q_proj"), ("to_k", "k_proj"), ("to_v", "v_proj"), ("to_out.0", "out_proj")]:
            if name.endswith("self_attn." + a):
                name = name[: -len(a)] + b
    return te, name


def get_module(m, te, path):
    root = m.unet if te == "unet" else m.text_encoders[te]
    try:
        return root.get_submodule(path)
    except AttributeError:
        return root.get_submodule(path.removeprefix("text_model."))


def target_id(m, te, path):
    """The Rust target id of a diffusers module: `unet:<ldm>` / `te<i>:<hf path>`."""
    if te == "unet":
        return "unet:" + tm.unet_key_map(dict(m.unet.config))(path + ".weight").removesuffix(".weight")
    return f"te{te}:" + ("" if path.startswith("text_model.") else "text_model.") + path


# --- building LoRA files ---------------------------------------------------------------------

class Builder:
    """Random factors for named modules of one tiny model, shaped from the module itself."""

    def __init__(self, m, seed: int):
        self.m = m
        self.g = torch.Generator("cpu").manual_seed(seed)
        self.tensors: dict[str, torch.Tensor] = {}

    def rnd(self, *shape, std=0.3):
        return torch.randn(*shape, generator=self.g) * std

    def weight(self, name):
        te, path = diffusers_module(self.m, name)
        return get_module(self.m, te, path).weight

    def lora(self, name, rank=4, alpha=None, conv_kernel=False, tucker=False):
        w = self.weight(name)
        out, inp = w.shape[0], w.shape[1]
        k = w.shape[2:] if w.ndim == 4 else ()
        if tucker:
            self.tensors[f"{name}.lora_down.weight"] = self.rnd(rank, inp, 1, 1)
            self.tensors[f"{name}.lora_mid.weight"] = self.rnd(rank, rank, *k)
            self.tensors[f"{name}.lora_up.weight"] = self.rnd(out, rank, 1, 1)
        elif w.ndim == 4:
            self.tensors[f"{name}.lora_down.weight"] = self.rnd(rank, inp, *k)
            self.tensors[f"{name}.lora_up.weight"] = self.rnd(out, rank, 1, 1)
        else:
            self.tensors[f"{name}.lora_down.weight"] = self.rnd(rank, inp)
            self.tensors[f"{name}.lora_up.weight"] = self.rnd(out, rank)
        if alpha is not None:
            self.tensors[f"{name}.alpha"] = torch.tensor(float(alpha))

    def loha(self, name, rank=3, alpha=None, cp=False):
        w = self.weight(name)
        out, inp = w.shape[0], w.shape[1]
        k = tuple(w.shape[2:])
        if cp:
            for i in (1, 2):
                self.tensors[f"{name}.hada_w{i}_a"] = self.rnd(rank, out)
                self.tensors[f"{name}.hada_w{i}_b"] = self.rnd(rank, inp)
                self.tensors[f"{name}.hada_t{i}"] = self.rnd(rank, rank, *k)
        else:
            flat = inp * int(np.prod(k)) if k else inp
            for i in (1, 2):
                self.tensors[f"{name}.hada_w{i}_a"] = self.rnd(out, rank)
                self.tensors[f"{name}.hada_w{i}_b"] = self.rnd(rank, flat)
        if alpha is not None:
            self.tensors[f"{name}.alpha"] = torch.tensor(float(alpha))

    def lokr(self, name, f_out, f_in, factor_w2=None, alpha=None):
        w = self.weight(name)
        out, inp = w.shape[0], w.shape[1]
        k = tuple(w.shape[2:])
        self.tensors[f"{name}.lokr_w1"] = self.rnd(f_out, f_in)
        o2, i2 = out // f_out, inp // f_in
        if factor_w2 is None:
            self.tensors[f"{name}.lokr_w2"] = self.rnd(o2, i2, *k)
        else:
            self.tensors[f"{name}.lokr_w2_a"] = self.rnd(o2, factor_w2)
            self.tensors[f"{name}.lokr_w2_b"] = self.rnd(factor_w2, i2, *k)
        if alpha is not None:
            self.tensors[f"{name}.alpha"] = torch.tensor(float(alpha))

    def save(self, file_name):
        tensors = {k: v.to(torch.float16).contiguous() for k, v in self.tensors.items()}
        save_file(tensors, os.path.join(OUT, file_name), metadata={"ss_network_module": "reference"})
        print("wrote", file_name, f"({len(tensors)} tensors)")
        return {k: v.float() for k, v in tensors.items()}  # what readers see (f16-rounded)


def modules_of(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    mods: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        for role in ("lora_down.weight", "lora_up.weight", "lora_mid.weight", "alpha", "hada_w1_a", "hada_w1_b",
                     "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2", "lokr_w1", "lokr_w1_a", "lokr_w1_b",
                     "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"):
            if k.endswith("." + role):
                mods.setdefault(k[: -len(role) - 1], {})[role] = v
                break
        else:
            raise KeyError(k)
    return mods


@torch.no_grad()
def apply(m, loras: list[tuple[dict, float, float]], skip=()):
    """Patches the diffusers modules of `m` in place: W += multiplier * updown, multiplier = te or
    unet weight. Returns {target id: patched weight}."""
    touched = {}
    for tensors, te_w, unet_w in loras:
        for name, w in modules_of(tensors).items():
            if name in skip:
                continue
            te, path = diffusers_module(m, name)
            mod = get_module(m, te, path)
            mult = unet_w if te == "unet" else te_w
            mod.weight += mult * updown(w, mod.weight)
            touched[target_id(m, te, path)] = mod.weight
    return {k: v.detach().clone() for k, v in touched.items()}


def peft_apply(m, tensors, weight):
    """PEFT merge (peft.tuners.lora.Linear.get_delta_weight): W += scaling * B @ A, scaling =
    lora_alpha / r; these files carry no alpha, so lora_alpha = r (diffusers' default), times the
    user weight."""
    touched = {}
    with torch.no_grad():
        for k, a in tensors.items():
            if not k.endswith(".lora_A.weight"):
                continue
            base = k[: -len(".lora_A.weight")]
            b = tensors[base + ".lora_B.weight"]
            comp, path = base.split(".", 1)
            te = "unet" if comp == "unet" else (0 if comp == "text_encoder" else 1)
            mod = get_module(m, te, path)
            delta = (b.reshape(b.shape[0], -1) @ a.reshape(a.shape[0], -1)).reshape(mod.weight.shape)
            mod.weight += weight * 1.0 * delta
            touched[target_id(m, te, path)] = mod.weight
    return {k: v.detach().clone() for k, v in touched.items()}


def save_expected(name, touched):
    save_file({k: v.float().contiguous() for k, v in touched.items()}, os.path.join(OUT, f"expected_{name}.safetensors"))
    print("wrote", f"expected_{name}.safetensors", f"({len(touched)} tensors)")


# --- the files -------------------------------------------------------------------------------

SD1_TE = "lora_te_text_model_encoder_layers_{}_"
UNMATCHED = "lora_unet_down_blocks_7_attentions_0_proj_in"


def sd1_files(m):
    files = {}
    b = Builder(m, 11)
    # Attention (attn1 q/k/v/out, attn2 k/v), feed-forward, conv 1x1 proj_in/proj_out; with and
    # without alpha; a LoCon 3x3 conv, time_emb_proj, the conv shortcut and a downsampler.
    a = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_"
    for n, alpha in [("attn1_to_q", 2), ("attn1_to_k", None), ("attn1_to_v", 1), ("attn1_to_out_0", 3),
                     ("attn2_to_k", 2), ("attn2_to_v", None), ("ff_net_0_proj", 2), ("ff_net_2", None)]:
        b.lora(a + n, alpha=alpha)
    b.lora("lora_unet_down_blocks_0_attentions_0_proj_in", alpha=2)
    b.lora("lora_unet_up_blocks_2_attentions_1_proj_out")
    b.lora("lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_q", alpha=4)
    b.lora("lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_2", rank=2, alpha=1)
    b.lora("lora_unet_down_blocks_1_resnets_0_conv1", alpha=2)  # LoCon 3x3
    b.lora("lora_unet_up_blocks_1_resnets_1_conv2")
    b.lora("lora_unet_down_blocks_2_resnets_0_conv_shortcut", alpha=2)
    b.lora("lora_unet_down_blocks_2_resnets_0_time_emb_proj", alpha=2)
    b.lora("lora_unet_down_blocks_0_downsamplers_0_conv", alpha=1)
    b.lora("lora_unet_up_blocks_0_upsamplers_0_conv", alpha=1)
    for layer in range(3):
        for n, alpha in [("self_attn_q_proj", 2), ("self_attn_v_proj", None), ("mlp_fc1", 2), ("mlp_fc2", 1)]:
            b.lora(SD1_TE.format(layer) + n, alpha=alpha)
    b.lora(SD1_TE.format(1) + "self_attn_out_proj", alpha=2)
    files["sd1_kohya"] = b.save("sd1_kohya.safetensors")
    # A module naming no layer of the model, reported as unmatched (kept out of the patch).
    extra = Builder(m, 12)
    extra.tensors = dict(b.tensors)
    extra.tensors[UNMATCHED + ".lora_down.weight"] = extra.rnd(4, 32, 1, 1)
    extra.tensors[UNMATCHED + ".lora_up.weight"] = extra.rnd(32, 4, 1, 1)
    extra.tensors["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.dora_scale"] = extra.rnd(1, 32)
    files["sd1_kohya_extra"] = extra.save("sd1_kohya_extra.safetensors")

    # Second LoRA: the LDM spelling on an SD1 model, Tucker (lora_mid) on a 3x3 conv.
    b = Builder(m, 13)
    b.lora("lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_q", alpha=2)
    b.lora("lora_unet_output_blocks_4_1_transformer_blocks_0_attn1_to_v", alpha=2)
    b.lora("lora_unet_middle_block_1_proj_in")
    b.lora("lora_unet_input_blocks_3_0_in_layers_2", alpha=2, tucker=True)
    b.lora("lora_unet_output_blocks_2_0_out_layers_3", rank=2, alpha=1, tucker=True)
    b.lora(SD1_TE.format(0) + "self_attn_k_proj", alpha=2)
    files["sd1_kohya_b"] = b.save("sd1_kohya_b.safetensors")

    # LoHa: linear, 3x3 conv flattened, 3x3 conv with CP (hada_t1/t2).
    b = Builder(m, 14)
    b.loha("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q", alpha=2)
    b.loha("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_ff_net_0_proj")
    b.loha("lora_unet_down_blocks_0_resnets_0_conv2", alpha=1)
    b.loha("lora_unet_up_blocks_1_resnets_0_conv1", alpha=2, cp=True)
    b.loha(SD1_TE.format(2) + "mlp_fc2", alpha=2)
    files["sd1_loha"] = b.save("sd1_loha.safetensors")

    # LoKr: full w1/w2 (alpha ignored), factorised w2 (alpha/dim), a 3x3 conv.
    b = Builder(m, 15)
    b.lokr("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q", 4, 4, alpha=8)
    b.lokr("lora_unet_up_blocks_2_attentions_0_transformer_blocks_0_ff_net_2", 4, 8, factor_w2=2, alpha=1)
    b.lokr("lora_unet_down_blocks_1_resnets_0_conv2", 2, 4, factor_w2=3, alpha=2)
    b.lokr("lora_unet_up_blocks_0_resnets_1_conv1", 4, 4)
    b.lokr(SD1_TE.format(0) + "mlp_fc1", 1, 4, factor_w2=2, alpha=1)
    files["sd1_lokr"] = b.save("sd1_lokr.safetensors")
    return files


def sd1_peft(m):
    g = torch.Generator("cpu").manual_seed(16)
    tensors = {}
    for comp, te, path in [
        ("unet", "unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v"),
        ("unet", "unet", "up_blocks.1.attentions.1.transformer_blocks.0.ff.net.0.proj"),
        ("unet", "unet", "mid_block.attentions.0.proj_out"),
        ("text_encoder", 0, "text_model.encoder.layers.1.self_attn.q_proj"),
    ]:
        w = get_module(m, te, path).weight
        r = 4
        tensors[f"{comp}.{path}.lora_A.weight"] = torch.randn(r, *w.shape[1:], generator=g) * 0.3
        tensors[f"{comp}.{path}.lora_B.weight"] = torch.randn(w.shape[0], r, *([1, 1] if w.ndim == 4 else []),
                                                            generator=g) * 0.3
    tensors = {k: v.to(torch.float16) for k, v in tensors.items()}
    save_file(tensors, os.path.join(OUT, "sd1_peft.safetensors"))
    print("wrote sd1_peft.safetensors")
    return {k: v.float() for k, v in tensors.items()}


def sdxl_file(m):
    b = Builder(m, 21)
    # kohya SDXL: the LDM (sgm) spelling for the UNet, te1 (CLIP-L) and te2 (OpenCLIP-G, whose
    # q/k/v are the split in_proj).
    for n, alpha in [("input_blocks_3_1_transformer_blocks_0_attn1_to_q", 2),
                     ("input_blocks_3_1_transformer_blocks_0_attn2_to_k", None),
                     ("input_blocks_5_1_transformer_blocks_1_attn1_to_out_0", 2),
                     ("input_blocks_5_1_proj_in", 2),
                     ("middle_block_1_transformer_blocks_1_ff_net_0_proj", 1),
                     ("output_blocks_0_1_transformer_blocks_0_attn2_to_v", 2),
                     ("output_blocks_3_1_proj_out", None),
                     ("input_blocks_1_0_in_layers_2", 2),
                     ("output_blocks_4_0_skip_connection", 2),
                     ("time_embed_0", 2),
                     ("label_emb_0_0", 2)]:
        b.lora("lora_unet_" + n, alpha=alpha)
    for te in ("lora_te1_", "lora_te2_"):
        for layer in range(3):
            for n, alpha in [("self_attn_q_proj", 2), ("self_attn_k_proj", None), ("self_attn_v_proj", 1),
                             ("self_attn_out_proj", 2), ("mlp_fc1", 2), ("mlp_fc2", None)]:
                if (layer + len(n)) % 2 == 0 or n.startswith("self_attn_q") or n.startswith("self_attn_v"):
                    b.lora(f"{te}text_model_encoder_layers_{layer}_{n}", alpha=alpha)
    return b.save("sdxl_kohya.safetensors")


# --- VAE --------------------------------------------------------------------------------------

def vae_files():
    gen = torch.Generator("cpu").manual_seed(31)
    vcfg = tm.vae_config(0.18215)
    vae = AutoencoderKL(**vcfg)
    tm.randomize(vae, gen, mtm.VAE_GAINS)
    vae = vae.half().float().eval()  # the weights readers see
    ldm = tm.vae_to_ldm(vae, vae.config)
    half = {k: v.to(torch.float16).contiguous() for k, v in ldm.items()}
    save_file(half, os.path.join(OUT, "vae_ldm_prefixed.safetensors"))
    save_file({k.removeprefix("first_stage_model."): v for k, v in half.items()},
              os.path.join(OUT, "vae_ldm.safetensors"))
    save_file({k: v.to(torch.float16).contiguous() for k, v in vae.state_dict().items()},
              os.path.join(OUT, "vae_diffusers.safetensors"))
    print("wrote vae_{ldm_prefixed,ldm,diffusers}.safetensors")
    z = torch.randn(1, 4, 6, 5, generator=torch.Generator("cpu").manual_seed(32))
    with torch.no_grad():
        decoded = vae.decode(z).sample
        encoded = vae.encode(decoded.clamp(-1, 1)).latent_dist.mean
    save_file({"latent": z, "decoded": decoded, "encoded_mean": encoded},
              os.path.join(OUT, "vae_decode.safetensors"))
    return vae


# --- embeddings --------------------------------------------------------------------------------

@torch.no_grad()
def embeddings():
    g = torch.Generator("cpu").manual_seed(41)
    sd1 = {"emb_params": torch.randn(2, 32, generator=g) * 0.5 + 0.5}
    save_file({k: v.half() for k, v in sd1.items()}, os.path.join(OUT, "emb_sd1.safetensors"))
    sdxl = {"clip_l": torch.randn(3, 32, generator=g) * 0.5 + 0.5, "clip_g": torch.randn(3, 48, generator=g) * 0.5}
    save_file({k: v.half() for k, v in sdxl.items()}, os.path.join(OUT, "emb_sdxl.safetensors"))
    print("wrote emb_sd1.safetensors, emb_sdxl.safetensors")
    # Reference states: the vectors written into free vocabulary rows, then a plain forward (what
    # A1111's EmbeddingsWithFixes does to the token embedding output).
    out = {}
    ids = [a1111.BOS, 320, 1125, 539] + [a1111.EOS] * 73  # "a photo of" + placeholder positions
    for kind, vecs in [("sd1", [sd1["emb_params"].half().float()]),
                       ("sdxl", [sdxl["clip_l"].half().float(), sdxl["clip_g"].half().float()])]:
        m = tm.load_tiny(kind)
        n = vecs[0].shape[0]
        placeholder = list(range(1000, 1000 + n))
        row = ids[:4] + placeholder + [a1111.EOS] * (77 - 4 - n)
        for e, (te, v) in enumerate(zip(m.text_encoders, vecs)):
            emb = te.get_input_embeddings()
            saved = emb.weight[placeholder].clone()
            emb.weight[placeholder] = v
            states = te(torch.asarray([row]), output_hidden_states=True).hidden_states
            emb.weight[placeholder] = saved
            out[f"{kind}.te{e}.last"] = states[-1]
            out[f"{kind}.te{e}.penultimate"] = states[-2]
        out[f"{kind}.ids"] = torch.tensor([ids[:4] + [0] * n + [a1111.EOS] * (77 - 4 - n)], dtype=torch.int64)
        out[f"{kind}.position"] = torch.tensor([4], dtype=torch.int64)
    save_file(out, os.path.join(OUT, "embedding_states.safetensors"))
    print("wrote embedding_states.safetensors")


# --- images ----------------------------------------------------------------------------------

def chunk_json(cond):
    return [[{"tokens": ids, "multipliers": ch.multipliers} for ch, ids in zip(enc_chunks, enc_ids)]
            for enc_chunks, enc_ids in zip(cond.chunks, cond.encoder_ids)]


def images(base_models, files, peft, vae):
    jobs = []
    base = dict(mr.BASE)

    def add(name, kind, loras, vae_file=None, **kw):
        j = dict(base)
        j.update(model=kind, name=name, loras=loras, vae=vae_file, **kw)
        jobs.append(j)

    add("sd1_lora_0.8", "sd1", [["sd1_kohya", 0.8, 0.8]])
    add("sd1_lora_-0.5", "sd1", [["sd1_kohya", -0.5, -0.5]])
    add("sd1_two_loras", "sd1", [["sd1_kohya", 0.8, 0.8], ["sd1_kohya_b", 0.5, 1.2]])
    add("sd1_loha_lokr_peft", "sd1", [["sd1_loha", 1.0, 1.0], ["sd1_lokr", 0.6, 0.6], ["sd1_peft", 0.7, 0.7]])
    add("sd1_vae_override", "sd1", [], vae_file="vae_ldm_prefixed")
    add("sdxl_lora_0.8", "sdxl", [["sdxl_kohya", 0.8, 0.8]], cfg=5.0)
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    manifest = []
    for job in jobs:
        m = copy.deepcopy(base_models[job["model"]])
        for name, te_w, unet_w in job["loras"]:
            if name == "sd1_peft":
                peft_apply(m, peft, te_w)
            else:
                apply(m, [(files[name], te_w, unet_w)])
        if job["vae"]:
            m.vae = copy.deepcopy(vae)
        r = mr.run_job(job, {job["model"]: m})
        fn = f"images/{job['name']}.png"
        Image.fromarray(r["images"][0]).save(os.path.join(OUT, fn))
        entry = dict(job)
        entry.update(file=fn, cond=chunk_json(r["cond"]), uncond=chunk_json(r["uncond"]))
        manifest.append(entry)
        print(job["name"], "latent std", float(r["latents"][0].std()))
    with open(os.path.join(OUT, "lora.json"), "w", encoding="utf-8") as f:
        f.write('{\n "about": "LoRA/VAE images: each job is make_references BASE + model, loras [[file stem, te, '
                'unet]], vae (file stem or null), and the A1111 chunks per text encoder (cond/uncond)",\n "jobs": [\n')
        f.write(",\n".join("  " + json.dumps(e) for e in manifest))
        f.write("\n ]\n}\n")
    print("wrote lora.json")


def main():
    os.makedirs(OUT, exist_ok=True)
    base = {kind: tm.load_tiny(kind) for kind in ("sd1", "sdxl")}
    files = sd1_files(base["sd1"])
    files["sdxl_kohya"] = sdxl_file(base["sdxl"])
    peft = sd1_peft(base["sd1"])
    # Patched weights (one LoRA at a time, weight 0.8; two LoRAs with te/unet weights).
    cases = [("sd1_kohya", "sd1", [("sd1_kohya", 0.8, 0.8)]),
             ("sd1_kohya_neg", "sd1", [("sd1_kohya", -0.5, -0.5)]),
             ("sd1_two", "sd1", [("sd1_kohya", 0.8, 0.8), ("sd1_kohya_b", 0.5, 1.2)]),
             ("sd1_loha", "sd1", [("sd1_loha", 0.8, 0.8)]),
             ("sd1_lokr", "sd1", [("sd1_lokr", 0.8, 0.8)]),
             ("sdxl_kohya", "sdxl", [("sdxl_kohya", 0.8, 0.8)])]
    for name, kind, loras in cases:
        m = copy.deepcopy(base[kind])
        save_expected(name, apply(m, [(files[f], te, un) for f, te, un in loras]))
    m = copy.deepcopy(base["sd1"])
    save_expected("sd1_peft", peft_apply(m, peft, 0.8))
    vae = vae_files()
    embeddings()
    images(base, files, peft, vae)


if __name__ == "__main__":
    main()
