"""Known-answer A1111 hashes for the library tests (crates/sd/tests/library.rs).

Re-implements, with hashlib only, the three hashes stable-diffusion-webui computes for model files:
- modules/hashes.py `calculate_sha256`: sha256 of the whole file, read in 1 MiB blocks
  ("Model hash" = first 10 hex, "TI hashes" = first 12 hex, "VAE hash" = first 10 hex);
- modules/hashes.py `addnet_hash_safetensors` (from kohya-ss sd-scripts): sha256 of the bytes after
  the 8-byte length and the JSON header ("Lora hashes" = first 12 hex, unless the file's metadata
  has `sshs_model_hash`, which A1111 prefers);
- modules/sd_models.py `model_hash` (legacy, pre-2023 "Model hash: 7460a6fa"): sha256 of the 64 KiB
  at offset 1 MiB, first 8 hex.

Usage: python tests/reference/library_hashes.py FILE...
"""

import hashlib
import sys


def calculate_sha256(filename):
    hash_sha256 = hashlib.sha256()
    with open(filename, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            hash_sha256.update(chunk)
    return hash_sha256.hexdigest()


def addnet_hash_safetensors(filename):
    hash_sha256 = hashlib.sha256()
    with open(filename, "rb") as b:
        n = int.from_bytes(b.read(8), "little")
        b.seek(n + 8)
        for chunk in iter(lambda: b.read(1024 * 1024), b""):
            hash_sha256.update(chunk)
    return hash_sha256.hexdigest()


def legacy_model_hash(filename):
    with open(filename, "rb") as file:
        m = hashlib.sha256()
        file.seek(0x100000)
        m.update(file.read(0x10000))
        return m.hexdigest()[0:8]


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(path)
        print("  sha256 ", calculate_sha256(path))
        print("  addnet ", addnet_hash_safetensors(path))
        print("  legacy ", legacy_model_hash(path))
