"""Image bytes the tests send: encoded pictures, and PNGs whose header claims a size their data does not have."""

import io
import struct
import zlib

from PIL import Image


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    """``image`` saved as ``fmt`` (PNG, JPEG, ...) -> the file's bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, idat: bytes = zlib.compress(b"\0" * 64), colour_type: int = 2) -> bytes:
    """A well-formed PNG whose header claims ``width`` x ``height`` 8-bit pixels (``colour_type`` 2: RGB, 0: grey)
    with ``idat`` as its pixel data (by default a few bytes, far fewer than the header promises)."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
