"""Reference for A1111 infotext pair scanning: runs Python's `re.findall` with the regex that
A1111's `modules/infotext_utils.py` uses (`re_param_code`) over realistic and random lines, and
writes the matches to tests/fixtures/infotext/findall.json. The Rust parser in
crates/doc/src/infotext.rs scans by hand and must find exactly the same pairs.

Run: python3 tests/reference/infotext_regex.py   (standard library only)
"""
import json
import pathlib
import random
import re

RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')

REALISTIC = [
    'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b',
    'Steps: 24, Sampler: DPM++ 2M, Schedule type: Karras, Lora hashes: "a: 1, b: 2", Version: v1.10.1',
    'Hires prompt: "line one,\\nline \\"two\\": end", Template: a\\b, Empty: ""',
    'Steps: 2, Aa: "x" y, Bb: "bad\\q", Cc: 3, Dd:, Ee: ok',
    'ADetailer model: face_yolov8n.pt, ADetailer prompt: "a, b", ADetailer version: 24.1.2',
    'TI hashes: "easynegative: c74b4e810b03", Emphasis: Original, Hires upscale: 2, Hires upscaler: 4x-UltraSharp',
    '  leading: spaces ,  Multiple   spaces:  x  , tab\there: y',
    'unterminated: "abc, next: 1, more: 2',
    'esc at end: "abc\\", other: 2, more: 3',
    'colon in bare: a:b:c, k2: v2, k3: v3',
]

ALPHABET = ['a', 'b', 'K', '1', '_', ' ', ' ', ':', ':', ',', ',', '"', '"', '\\', '-', '/', '\t', 'é', 'x']


def main():
    rng = random.Random(20240601)
    lines = list(REALISTIC)
    for _ in range(400):
        lines.append(''.join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))))
    cases = [{'line': line, 'pairs': [list(p) for p in RE_PARAM.findall(line)]} for line in lines]
    out = pathlib.Path(__file__).resolve().parents[1] / 'fixtures' / 'infotext' / 'findall.json'
    text = '[\n' + ',\n'.join(json.dumps(c, ensure_ascii=False) for c in cases) + '\n]\n'
    out.write_text(text, encoding='utf-8')
    print(f'wrote {len(cases)} cases to {out}')


if __name__ == '__main__':
    main()
