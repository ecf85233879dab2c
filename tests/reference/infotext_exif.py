"""Reference JPEG and WebP files carrying A1111 infotext the way A1111 writes them: EXIF
UserComment = b"UNICODE\\0" + UTF-16-BE text (piexif.helper.UserComment.dump(..., encoding=
"unicode")), in a big-endian TIFF (as piexif.dump writes it). Pillow writes the files and reads
the comment back, which checks the EXIF structure. Output: tests/fixtures/infotext/a1111.{jpg,webp}.

Run: /path/to/venv/bin/python tests/reference/infotext_exif.py   (needs pillow)
"""
import pathlib
import struct

from PIL import Image

TEXT = ('a fox in the snow, (masterpiece:1.2), <lora:winter:0.7>\n'
        'Negative prompt: blurry, lowres\n'
        'Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6, Seed: 987654321, '
        'Size: 32x24, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, '
        'Lora hashes: "winter: 0123456789ab", Version: v1.10.1')


def exif_with_user_comment(comment: bytes) -> bytes:
    # TIFF header (big-endian), IFD0 with one entry: ExifIFD pointer (0x8769, LONG).
    ifd0_offset = 8
    exif_ifd_offset = ifd0_offset + 2 + 12 + 4
    data_offset = exif_ifd_offset + 2 + 12 + 4
    out = b'MM\x00\x2a' + struct.pack('>I', ifd0_offset)
    out += struct.pack('>H', 1) + struct.pack('>HHII', 0x8769, 4, 1, exif_ifd_offset) + struct.pack('>I', 0)
    # Exif IFD with one entry: UserComment (0x9286, UNDEFINED = 7).
    out += struct.pack('>H', 1) + struct.pack('>HHII', 0x9286, 7, len(comment), data_offset) + struct.pack('>I', 0)
    return out + comment


def main():
    out = pathlib.Path(__file__).resolve().parents[1] / 'fixtures' / 'infotext'
    comment = b'UNICODE\x00' + TEXT.encode('utf_16_be')
    exif = b'Exif\x00\x00' + exif_with_user_comment(comment)
    image = Image.new('RGB', (32, 24), (200, 120, 40))
    for ext, fmt in [('jpg', 'JPEG'), ('webp', 'WEBP')]:
        path = out / f'a1111.{ext}'
        image.save(path, fmt, exif=exif, quality=80)
        back = Image.open(path).getexif().get_ifd(0x8769)[0x9286]
        assert back == comment, (ext, back[:40])
        print('wrote', path, path.stat().st_size)
    (out / 'a1111_parameters.txt').write_text(TEXT, encoding='utf-8')


if __name__ == '__main__':
    main()
