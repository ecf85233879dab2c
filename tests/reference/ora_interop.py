"""Produces Krita-written OpenRaster fixtures for crates/ora/tests/fixtures.rs.

1. Builds `tests/fixtures/ora/input_groups.ora` by hand (standard library only): an opaque
   background, layers with offsets, opacities and blend modes, a hidden layer, and a nested
   stack (group) with opacity whose children do not overlap, so flattening the group is exact.
2. Has Krita (Debian's krita 5.1.x) re-save it as `krita_groups.ora` (Krita's own writer: its
   stack structure, attribute spelling, layer cropping) and flatten it to `krita_groups.png`.
3. Has Krita convert a PNG to `krita_from_png.ora` (a single-layer file as Krita writes it).

Run (needs krita, xvfb, xauth):  python3 tests/reference/ora_interop.py
"""
import os
import pathlib
import struct
import subprocess
import tempfile
import zipfile
import zlib

OUT = pathlib.Path(__file__).resolve().parents[1] / 'fixtures' / 'ora'


def png(width, height, pixel):
    rows = b''.join(
        b'\x00' + b''.join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    header = struct.pack('>IIBBBBB', width, height, 8, 6, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(rows, 9))
            + chunk(b'IEND', b''))


def gradient(seed, alpha_rows=False, height=32):
    def pixel(x, y):
        a = (y * 255) // (height - 1) if alpha_rows else 255
        return ((x * 29 + seed * 53) % 256, (y * 17 + seed * 7) % 256, ((x + y) * 9 + seed * 91) % 256, a)
    return pixel


def build_input(path):
    layers = {
        'data/bg.png': png(48, 32, gradient(1)),
        'data/multiply.png': png(20, 32, gradient(2, alpha_rows=True)),
        'data/screen.png': png(16, 20, gradient(3, alpha_rows=True, height=20)),
        'data/hidden.png': png(48, 32, lambda x, y: (255, 0, 255, 255)),
        'data/group_a.png': png(10, 10, gradient(4, height=10)),
        'data/group_b.png': png(10, 10, gradient(5, alpha_rows=True, height=10)),
    }
    stack = '''<?xml version="1.0" encoding="UTF-8"?>
<image version="0.0.5" w="48" h="32">
 <stack>
  <stack name="group" x="0" y="0" opacity="0.8" visibility="visible">
   <layer name="group a" src="data/group_a.png" x="2" y="20" composite-op="svg:src-over"/>
   <layer name="group b" src="data/group_b.png" x="30" y="20" composite-op="svg:src-over"/>
  </stack>
  <layer name="hidden" src="data/hidden.png" x="0" y="0" visibility="hidden"/>
  <layer name="screen" src="data/screen.png" x="28" y="-6" opacity="0.6" composite-op="svg:screen"/>
  <layer name="multiply" src="data/multiply.png" x="-6" y="0" opacity="0.75" composite-op="svg:multiply"/>
  <layer name="background" src="data/bg.png" x="0" y="0"/>
 </stack>
</image>
'''
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr(zipfile.ZipInfo('mimetype'), 'image/openraster', compress_type=zipfile.ZIP_STORED)
        z.writestr('stack.xml', stack, compress_type=zipfile.ZIP_DEFLATED)
        for name, data in layers.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_STORED)
        z.writestr('mergedimage.png', layers['data/bg.png'], compress_type=zipfile.ZIP_STORED)


def krita_export(src, dst):
    env = dict(os.environ, XDG_RUNTIME_DIR=tempfile.mkdtemp())
    if os.path.exists(dst):
        os.remove(dst)
    subprocess.run(['xvfb-run', '-a', 'krita', '--export', '--export-filename', str(dst), str(src)],
                   env=env, check=True, capture_output=True)
    assert os.path.exists(dst), f'krita wrote no {dst}'


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    source = OUT / 'input_groups.ora'
    build_input(source)
    krita_export(source, OUT / 'krita_groups.ora')
    krita_export(source, OUT / 'krita_groups.png')
    with tempfile.TemporaryDirectory() as tmp:
        flat = pathlib.Path(tmp) / 'flat.png'
        flat.write_bytes(png(24, 16, gradient(6, alpha_rows=True, height=16)))
        krita_export(flat, OUT / 'krita_from_png.ora')
        (OUT / 'krita_from_png.source.png').write_bytes(flat.read_bytes())
    version = subprocess.run(['dpkg-query', '-W', '-f', '${Version}', 'krita'],
                             capture_output=True, text=True).stdout
    (OUT / 'KRITA_VERSION').write_text(version + '\n')
    for f in sorted(OUT.iterdir()):
        print(f.name, f.stat().st_size)


if __name__ == '__main__':
    main()
