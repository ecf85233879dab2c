"""Writes a tiny checkpoint as a diffusers model folder (unet/, vae/, text_encoder/[, text_encoder_2/])
with diffusers' and transformers' own save_pretrained, for the Rust diffusers-layout loader test.

Run: /work/refvenv/bin/python tests/reference/make_diffusers_folder.py [KIND] [OUT_DIR]
Default: KIND=sd1, OUT_DIR=tests/fixtures/models/tiny_sd1_diffusers (committed; SDXL is only
checked locally, its folder is twice as large). Weights are float16-exact, so saving float16 is lossless.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models as tm  # noqa: E402

kind = sys.argv[1] if len(sys.argv) > 1 else "sd1"
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(tm.MODELS_DIR, f"tiny_{kind}_diffusers")
m = tm.load_tiny(kind)
m.unet.to(torch.float16).save_pretrained(os.path.join(out, "unet"), safe_serialization=True)
m.vae.to(torch.float16).save_pretrained(os.path.join(out, "vae"), safe_serialization=True)
names = ["text_encoder", "text_encoder_2"]
for name, enc in zip(names, m.text_encoders):
    enc.to(torch.float16).save_pretrained(os.path.join(out, name), safe_serialization=True)
print("wrote", out)
