"""PyTorch timings of the components `pentimento bench` times (crates/sd/src/bench.rs), for the
same sizes with random weights: diffusers UNet2DConditionModel / AutoencoderKL and transformers
CLIP text models, torch.set_num_threads(2), float32, CPU, default (SDPA) attention.

Run: /work/refvenv/bin/python tests/reference/bench_torch.py [sd15] [sdxl] [--repeats N]
     [--only text|unet|vae]
Prints one JSON object per line with the same fields as the Rust bench.
Packages: see requirements-bench.txt (torch, diffusers, transformers).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

torch.set_num_threads(2)
torch.manual_seed(0)


def peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def time_runs(repeats: int, fn) -> float:
    with torch.inference_mode():
        if repeats == 0:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start
        fn()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - start) / repeats


def unet_sd15() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768, attention_head_dim=8)


def unet_sdxl() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048,
        attention_head_dim=(5, 10, 20), use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816)


def vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)


def clip_l() -> CLIPTextModel:
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, max_position_embeddings=77, hidden_size=768, intermediate_size=3072,
        num_hidden_layers=12, num_attention_heads=12, hidden_act="quick_gelu", eos_token_id=49407))


def clip_g() -> CLIPTextModelWithProjection:
    return CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=49408, max_position_embeddings=77, hidden_size=1280, intermediate_size=5120,
        num_hidden_layers=32, num_attention_heads=20, hidden_act="gelu", projection_dim=1280,
        eos_token_id=49407))


def bench(model: str, repeats: int, batch: int, only: str | None):
    size = 512 if model == "sd15" else 1024
    latent = size // 8
    entries = []

    def report(component, input_desc, build_s, seconds):
        e = dict(model=model, component=component, input=input_desc, build_seconds=round(build_s, 3),
                 seconds=round(seconds, 3), peak_rss_mib=round(peak_rss_mib(), 1), impl="pytorch")
        print(json.dumps(e), flush=True)
        entries.append(e)

    if only in (None, "text"):
        reset_peak_rss()
        start = time.perf_counter()
        encoders = [clip_l().eval()] + ([clip_g().eval()] if model == "sdxl" else [])
        build = time.perf_counter() - start
        ids = torch.tensor([[49406] + [320 + i for i in range(1, 77)]] * batch)

        def run():
            for enc in encoders:
                enc(ids, output_hidden_states=True)

        names = "CLIP-L" + (" + OpenCLIP-bigG" if model == "sdxl" else "")
        report(f"text encode ({names})", f"{batch}x77 tokens", build, time_runs(repeats, run))
        del encoders

    if only in (None, "unet"):
        reset_peak_rss()
        start = time.perf_counter()
        unet = (unet_sd15() if model == "sd15" else unet_sdxl()).eval()
        build = time.perf_counter() - start
        x = torch.randn(batch, 4, latent, latent)
        ctx = torch.randn(batch, 77, 768 if model == "sd15" else 2048)
        t = torch.full((batch,), 537.25)
        kw = {}
        if model == "sdxl":
            kw["added_cond_kwargs"] = {"text_embeds": torch.randn(batch, 1280),
                                       "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * batch,
                                                                dtype=torch.float32)}
        seconds = time_runs(repeats, lambda: unet(x, t, encoder_hidden_states=ctx, **kw))
        report("UNet step", f"{batch}x4x{latent}x{latent} latent ({size}² image), 77 tokens", build, seconds)
        del unet

    if only in (None, "vae"):
        reset_peak_rss()
        start = time.perf_counter()
        v = vae().eval()
        build = time.perf_counter() - start
        z = torch.randn(1, 4, latent, latent)
        report("VAE decode", f"1x4x{latent}x{latent} latent -> {size}² image", build,
               time_runs(repeats, lambda: v.decode(z)))
    return entries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["sd15", "sdxl"])
    ap.add_argument("--repeats", type=int, default=0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--only", choices=["text", "unet", "vae"])
    a = ap.parse_args()
    for m in a.models:
        bench(m, a.repeats, a.batch, a.only)


if __name__ == "__main__":
    main()
