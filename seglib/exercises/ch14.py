"""Checks of chapter 14 (Azure ML): the image bytes of a scoring request, and the size of a base64 image before it
is decoded.

The answer key is what ``deploy/azureml/score.py`` accepts (the checks know the image they wrapped, so they need
neither the script nor Azure's packages) and Python's own ``base64`` decoder.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import numbers
import textwrap

import numpy as np
from PIL import Image

from seglib.exercises import Wrong, expect

# ---------------------------------------------------------------------------------------------------------
# 14.1 The image bytes of a request body
# ---------------------------------------------------------------------------------------------------------


def _png(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _json(document) -> bytes:
    return json.dumps(document).encode()


def _valid_bodies(png: bytes) -> list[tuple[str, bytes, str | None, str]]:
    """(name, body, content type, hint when wrong) of requests whose image is ``png``."""
    text = base64.b64encode(png).decode("ascii")
    wrapped = "\n".join(text[i:i + 76] for i in range(0, len(text), 76))
    return [
        ("the raw PNG with Content-Type application/octet-stream", png, "application/octet-stream", ""),
        ("the raw PNG with Content-Type image/png", png, "image/png", ""),
        ("the raw PNG without a Content-Type (None)", png, None, ""),
        ('JSON {"image": base64} with Content-Type application/json', _json({"image": text}), "application/json", ""),
        ("the same JSON with Content-Type application/json; charset=utf-8", _json({"image": text}),
         "application/json; charset=utf-8", ": a Content-Type may carry parameters after ';': compare only the "
                                             "media type, before the ';'"),
        ("the same JSON with Content-Type Application/JSON", _json({"image": text}), "Application/JSON",
         ": media types are case-insensitive"),
        ("the same JSON with Content-Type text/json", _json({"image": text}), "text/json",
         ": text/json is JSON too"),
        ('JSON whose "image" is a data URL (data:image/png;base64,...)',
         _json({"image": "data:image/png;base64," + text}), "application/json",
         ": strip a data URL's prefix, up to its first comma, before decoding"),
        ('JSON whose "image" is base64 wrapped in lines of 76 characters', _json({"image": wrapped}),
         "application/json", ": remove the whitespace (line breaks) from the base64 before decoding it"),
    ]


def _bad_bodies(png: bytes) -> list[tuple[str, bytes, str, str]]:
    """(name, body, content type, hint) of requests that must raise ``ValueError`` (a 400)."""
    return [
        ("a body cut off in the middle of its JSON", b'{"image": ', "application/json", ""),
        ("bytes that are not UTF-8 text, sent as JSON", b"\xff\xfe\x00garbage", "application/json", ""),
        ("a JSON list instead of an object", _json([1, 2, 3]), "application/json",
         ': check that the document is a dict with a string "image" before reading it'),
        ('a JSON object without "image"', _json({"picture": "aGVsbG8="}), "application/json",
         ': a missing "image" is the client\'s mistake: raise ValueError, not KeyError'),
        ('a JSON object whose "image" is a number', _json({"image": 42}), "application/json",
         ': "image" must be a string'),
        ('"image" with characters outside base64 ("aGVsbG8h*!")', _json({"image": "aGVsbG8h*!"}), "application/json",
         ": base64.b64decode skips characters outside the alphabet unless told not to: pass validate=True"),
    ]


def check_image_bytes(image_bytes) -> None:
    """14.1: ``image_bytes(body: bytes, content_type: str | None) -> bytes``: the image file's bytes of a scoring
    request (JSON ``{"image": base64}`` or the raw file); a malformed body raises ``ValueError``."""
    png = _png(np.random.default_rng(14))
    for index, (name, body, content_type, hint) in enumerate(_valid_bodies(png)):
        try:
            got = image_bytes(body, content_type)
        except Exception as error:
            if index == 0 or isinstance(error, NotImplementedError):
                raise
            raise Wrong(f"for {name} your function raised {type(error).__name__} ({error}), but the body holds an "
                        f"image{hint}") from None
        expect(isinstance(got, (bytes, bytearray)),
               f"for {name} your function should return bytes, got {type(got).__name__}{hint}")
        if bytes(got) == body and body != png:
            raise Wrong(f"for {name} your function returned the body itself, not the image inside it{hint}")
        expect(bytes(got) == png, f"for {name} your function returned {len(got):,} bytes that are not the "
                                  f"{len(png):,} bytes of the image sent{hint}")
    for name, body, content_type, hint in _bad_bodies(png):
        try:
            got = image_bytes(body, content_type)
        except ValueError:
            continue
        except NotImplementedError:
            raise
        except Exception as error:
            raise Wrong(f"for {name} your function raised {type(error).__name__} ({error}); it should raise "
                        f"ValueError, which the script answers with 400, where any other exception is a 500"
                        f"{hint}") from None
        what = f"{len(got):,} bytes" if isinstance(got, (bytes, bytearray)) else f"{type(got).__name__} {got!r:.40}"
        raise Wrong(f"for {name} your function returned {what} instead of raising ValueError{hint}")


# ---------------------------------------------------------------------------------------------------------
# 14.2 The size of a base64 image, before decoding it
# ---------------------------------------------------------------------------------------------------------


def _size_cases(rng: np.random.Generator) -> list[tuple[str, str]]:
    cases = [("an empty text", ""), ('"YQ==" (1 byte, two padding characters)', "YQ=="),
             ('"aGk=" (2 bytes, one padding character)', "aGk="), ('"aGVsbG8h" (6 bytes, no padding)', "aGVsbG8h")]
    for size in (1, 2, 3, 4, 5, 31, 32, 33, 1000, 1001):
        cases.append((f"the base64 of {size} random bytes", base64.b64encode(rng.bytes(size)).decode("ascii")))
    data = rng.bytes(1000)
    cases += [("the base64 of 1000 random bytes in lines of 76 characters (base64.encodebytes)",
               base64.encodebytes(data).decode("ascii")),
              ("the base64 of 1000 random bytes in lines of 64 characters ending in \\r\\n",
               "\r\n".join(textwrap.wrap(base64.b64encode(data).decode("ascii"), 64)) + "\r\n"),
              ("the base64 of 3 MiB + 1 random bytes", base64.b64encode(rng.bytes(3 * 2**20 + 1)).decode("ascii"))]
    return cases


@contextlib.contextmanager
def _no_decoding():
    """Make the usual decoders refuse while the answer runs: the size must come from the text's length."""
    def refuse(*args, **kwargs):
        raise Wrong("your function decodes the text (base64.b64decode or the like): the point is to know the size "
                    "before paying for decoding it; count characters instead")

    names = [(base64, name) for name in ("b64decode", "standard_b64decode", "decodebytes", "urlsafe_b64decode")]
    names += [(binascii, "a2b_base64")]
    saved = [(module, name, getattr(module, name)) for module, name in names]
    for module, name in names:
        setattr(module, name, refuse)
    try:
        yield
    finally:
        for module, name, function in saved:
            setattr(module, name, function)


def check_decoded_size(decoded_size) -> None:
    """14.2: ``decoded_size(text: str) -> int``: how many bytes the base64 ``text`` (padded, perhaps wrapped in
    lines) decodes to, computed from its characters without decoding it."""
    rng = np.random.default_rng(14)
    for name, text in _size_cases(rng):
        expected = len(base64.b64decode(text))
        with _no_decoding():
            got = decoded_size(text)
        expect(isinstance(got, numbers.Integral) and not isinstance(got, bool),
               f"for {name} your function should return an int (a number of bytes), got {type(got).__name__} "
               f"{got!r:.40}")
        if int(got) == expected:
            continue
        characters = "".join(text.split())
        padding = len(characters) - len(characters.rstrip("="))
        hint = ""
        if padding and int(got) == 3 * len(characters) // 4:
            hint = ": a padding '=' stands for no byte; each one at the end takes one byte off"
        elif characters != text and int(got) in (3 * len(text) // 4, 3 * len(text) // 4 - padding):
            hint = ": line breaks are not base64 characters; leave out the whitespace before counting"
        elif int(got) == 4 * len(characters) // 3:
            hint = ": 4 base64 characters carry 3 bytes, not the other way round"
        raise Wrong(f"for {name} your function says {int(got):,} bytes, expected {expected:,}{hint}")


CHECKS = {"14.1": check_image_bytes, "14.2": check_decoded_size}
