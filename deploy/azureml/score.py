"""Azure ML scoring script: the book's U-Net behind a managed online endpoint (SDK v2), through seglib's one
prediction path.

Azure ML's inference server (``azureml-inference-server-http``, started as ``azmlinfsrv``) imports this file,
calls :func:`init` once per worker and :func:`run` once per request. ``run`` is decorated with ``@rawhttp``, so it
receives the Flask request itself and reads the raw body:

* ``Content-Type: application/json`` -> ``{"image": "<base64 of the image file's bytes>"}`` (what
  ``ml_client.online_endpoints.invoke(request_file=...)`` sends);
* anything else (``application/octet-stream``, ``image/png``, ``image/jpeg``) -> the body is the image file.

The answer is :meth:`seglib.predict.Prediction.as_json` (``?overlay=1`` adds the overlay). A bad upload is the
client's fault, not the server's, and gets a 4xx with ``{"error": message}``, never a 500: :func:`image_bytes` is
the one place a request body is read and parsed, and it turns every malformed body into :class:`BadRequest`:

* 413 a body over the upload limit, refused on its declared length before it is read (or, sent chunked, as soon as
  the count passes the limit), and a base64 text longer than the limit allows, refused before it is decoded;
* 400 malformed JSON (bad syntax or encoding, nesting too deep to parse; numbers are never converted, so a
  5,000-digit integer is just a value that is not the image), a JSON document that is not an object with a string
  ``"image"``, bad base64, a body that cannot be read (a broken chunked encoding, a client gone);

then :class:`seglib.predict.ImageError` gives its own status (400 unreadable or truncated, 413 too many pixels,
415 unsupported format), and a method other than POST gets 405 with ``Allow: POST``. Anything else that raises is
a real server error, which the server answers with 500.

Settings (environment variables, read and checked by :func:`init`, which refuses a bad value naming it):

* ``SEGLIB_MAX_PIXELS`` (:data:`MAX_PIXELS_ENV`): most pixels decoded (default :data:`seglib.predict.MAX_PIXELS`);
* ``SEGLIB_MAX_UPLOAD_BYTES`` (:data:`MAX_UPLOAD_ENV`): the largest image file accepted, in bytes (default
  :data:`MAX_UPLOAD_BYTES`, 16 MiB, the web app's upload limit). It bounds the raw body; a JSON body may hold its
  base64 (4/3 the size, line-wrapped or not) plus :data:`JSON_SLACK` bytes.

The code folder Azure uploads is the repository root (filtered by its ``.amlignore`` down to ``seglib/``, this
file and the training script), so the ``seglib`` beside this file is put first on ``sys.path``: the endpoint runs
exactly the library of the checkout it was deployed from. The model folder is found under ``AZUREML_MODEL_DIR``
(``.../azureml-models/<name>/<version>/<folder>/model.keras`` for a model registered from a folder).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parents[2]  # <code folder>/deploy/azureml/score.py
if str(CODE_ROOT) not in sys.path:
    sys.path.insert(0, str(CODE_ROOT))

from azureml_inference_server_http.api.aml_request import rawhttp  # noqa: E402
from azureml_inference_server_http.api.aml_response import AMLResponse  # noqa: E402

import seglib  # noqa: E402
from seglib import predict  # noqa: E402

__all__ = ["MODEL_DIR_ENV", "MAX_PIXELS_ENV", "MAX_UPLOAD_ENV", "MAX_UPLOAD_BYTES", "BadRequest", "find_model",
           "max_pixels", "max_upload_bytes", "image_bytes", "init", "run"]

#: Set by Azure ML (and by ``azmlinfsrv --model_dir``) to the registered model's version folder.
MODEL_DIR_ENV = "AZUREML_MODEL_DIR"
#: Optional limit on decoded pixels (default :data:`seglib.predict.MAX_PIXELS`).
MAX_PIXELS_ENV = "SEGLIB_MAX_PIXELS"
#: Optional limit on the image file's bytes, raw or base64 in JSON (default :data:`MAX_UPLOAD_BYTES`).
MAX_UPLOAD_ENV = "SEGLIB_MAX_UPLOAD_BYTES"
#: Largest image file accepted: the web app's default upload limit (a 1024x2048 PNG photo is 3-6 MiB).
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
#: Room a JSON body has beyond the base64 text: braces, the key, a data-URL prefix, other small fields.
JSON_SLACK = 4096
#: A body over the limit but under this size is read to its end (in chunks, kept nowhere) before the 413, so that
#: the client gets the answer rather than a reset connection; a larger one is answered without reading it.
DRAIN_BYTES = 64 * 1024 * 1024
JSON_TYPES = ("application/json", "text/json")
_CHUNK = 64 * 1024

predictor: predict.Predictor | None = None
max_upload: int = MAX_UPLOAD_BYTES


class BadRequest(ValueError):
    """A request the script cannot read; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def find_model(model_dir: str | os.PathLike) -> Path:
    """The one ``.keras`` file anywhere under ``model_dir``; a clear error if there are none or several."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{MODEL_DIR_ENV}={model_dir} is not a folder")
    found = sorted(model_dir.rglob("*.keras"))
    if len(found) != 1:
        listing = ", ".join(str(path.relative_to(model_dir)) for path in found) or "no .keras file"
        raise FileNotFoundError(f"expected exactly one .keras model under {model_dir}, found {listing}: register a "
                                f"folder that holds one model")
    return found[0]


def _positive_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise ValueError(f"{name} must be a positive integer, got {text[:40]!r}")
    return int(text)


def max_pixels() -> int:
    """The decode limit: ``$SEGLIB_MAX_PIXELS`` (a positive integer) or seglib's default."""
    return _positive_int(MAX_PIXELS_ENV, predict.MAX_PIXELS)


def max_upload_bytes() -> int:
    """The largest image file accepted, in bytes: ``$SEGLIB_MAX_UPLOAD_BYTES`` (a positive integer) or
    :data:`MAX_UPLOAD_BYTES`."""
    return _positive_int(MAX_UPLOAD_ENV, MAX_UPLOAD_BYTES)


def init() -> None:
    """Check the settings, then load the model once per worker."""
    global predictor, max_upload
    if not os.environ.get(MODEL_DIR_ENV):
        raise RuntimeError(f"{MODEL_DIR_ENV} is not set: Azure ML sets it; locally pass azmlinfsrv --model_dir")
    pixels, upload = max_pixels(), max_upload_bytes()
    path = find_model(os.environ[MODEL_DIR_ENV])
    predictor, max_upload = predict.Predictor(path, max_pixels=pixels), upload
    print(f"seglib from {Path(seglib.__file__).parent}; model {path}; input {predictor.image_size}; "
          f"max pixels {predictor.max_pixels}; max upload {max_upload:,} bytes")


def _base64_limit(max_bytes: int) -> int:
    return 4 * -(-max_bytes // 3)


def _body_limit(max_bytes: int, is_json: bool) -> int:
    """Most bytes a body may have: the file itself, or its base64 with a line break (``\\r\\n`` escaped, 4
    characters) every 64 characters or more, plus :data:`JSON_SLACK`."""
    if not is_json:
        return max_bytes
    text = _base64_limit(max_bytes)
    return text + text // 16 + JSON_SLACK


def _too_large(what: str, limit: int, max_bytes: int) -> BadRequest:
    held = "" if limit == max_bytes else f" (JSON holding the base64 of an image file of at most {max_bytes:,} bytes)"
    return BadRequest(f"{what} is over the limit of {limit:,} bytes{held}; send a smaller image", 413)


def _drain(stream, budget: int) -> None:
    while budget > 0 and (chunk := stream.read(min(_CHUNK, budget))):
        budget -= len(chunk)


def _read_body(request, limit: int, max_bytes: int) -> bytes:
    """At most ``limit`` bytes of the body: refused on a declared length over it before anything is read; without
    one (chunked), as soon as the count passes it."""
    declared = request.content_length
    if declared is not None and declared > limit:
        if declared <= DRAIN_BYTES:
            _drain(request.stream, declared)
        raise _too_large(f"the body ({declared:,} bytes)", limit, max_bytes)
    chunks, size = [], 0
    while chunk := request.stream.read(min(_CHUNK, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            _drain(request.stream, DRAIN_BYTES - size)
            raise _too_large("the body", limit, max_bytes)
    return b"".join(chunks)


class _Number:
    """What a JSON number parses to here: nothing is converted (a 5,000-digit integer would raise), and only
    ``"image"`` is read, which a number is not."""


_NUMBER = _Number()


def _json_image(body: bytes, max_bytes: int) -> bytes:
    """``{"image": "<base64>"}`` (or a data URL) -> the image file's bytes."""
    if not body.strip():
        raise BadRequest('the JSON body is empty; send {"image": "<base64>"} or the raw image bytes with '
                         'Content-Type application/octet-stream')
    try:
        document = json.loads(body, parse_int=lambda _: _NUMBER, parse_float=lambda _: _NUMBER,
                              parse_constant=lambda _: _NUMBER)
    except RecursionError as error:
        raise BadRequest("the JSON body is nested too deeply to parse; send {\"image\": \"<base64>\"}") from error
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise BadRequest(f"the body is not valid JSON ({error}); send {{\"image\": \"<base64>\"}} or the raw "
                         f"image bytes with Content-Type application/octet-stream") from error
    if not isinstance(document, dict) or not isinstance(document.get("image"), str):
        raise BadRequest('the JSON body needs a string field "image" holding the base64 of the image file')
    text = document["image"]
    if text.startswith("data:") and "," in text:  # a data URL: data:image/png;base64,....
        text = text.split(",", 1)[1]
    text = "".join(text.split())  # line-wrapped base64 (base64 -w 76) too
    if len(text) > _base64_limit(max_bytes):
        raise _too_large(f'"image" ({len(text):,} characters of base64)', _base64_limit(max_bytes), max_bytes)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadRequest(f'"image" is not valid base64: {error}') from error
    if len(data) > max_bytes:
        raise _too_large(f"the image file ({len(data):,} bytes)", max_bytes, max_bytes)
    return data


def image_bytes(request, max_bytes: int = MAX_UPLOAD_BYTES) -> bytes:
    """The image file's bytes from a request: a JSON body ``{"image": base64}``, else the raw body is the file.
    Every malformed body raises :class:`BadRequest` (400, or 413 over ``max_bytes``), never another exception."""
    mimetype = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    is_json = mimetype in JSON_TYPES
    try:
        body = _read_body(request, _body_limit(max_bytes, is_json), max_bytes)
    except (BadRequest, TimeoutError):  # TimeoutError: the server's scoring timeout, its own answer
        raise
    except Exception as error:  # werkzeug's ClientDisconnected, gunicorn's InvalidChunkSize, NoMoreData...
        raise BadRequest(f"the request body could not be read ({type(error).__name__}: {error})") from error
    return _json_image(body, max_bytes) if is_json else body


def _error(status: int, message: str, headers: dict | None = None) -> AMLResponse:
    return AMLResponse({"error": message}, status, headers or {}, json_str=True)


@rawhttp
def run(request) -> AMLResponse:
    """One request -> the prediction as JSON, or a 4xx answer naming what is wrong with the upload."""
    if request.method != "POST":
        return _error(405, "POST an image to /score (raw bytes, or JSON {\"image\": \"<base64>\"})",
                      {"Allow": "POST"})
    try:
        data = image_bytes(request, max_upload)
        prediction = predictor.predict_bytes(data)
    except (BadRequest, predict.ImageError) as error:
        return _error(error.status, str(error))
    overlay = request.args.get("overlay", "0").lower() in ("1", "true", "yes")
    return AMLResponse(prediction.as_json(overlay=overlay), 200, json_str=True)
