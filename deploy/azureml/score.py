"""Azure ML scoring script: the book's U-Net behind a managed online endpoint (SDK v2), through seglib's one
prediction path.

Azure ML's inference server (``azureml-inference-server-http``, started as ``azmlinfsrv``) imports this file,
calls :func:`init` once per worker and :func:`run` once per request. ``run`` is decorated with ``@rawhttp``, so it
receives the Flask request itself and reads the raw body:

* ``Content-Type: application/json`` -> ``{"image": "<base64 of the image file's bytes>"}`` (what
  ``ml_client.online_endpoints.invoke(request_file=...)`` sends);
* anything else (``application/octet-stream``, ``image/png``, ``image/jpeg``) -> the body is the image file.

The answer is :meth:`seglib.predict.Prediction.as_json` (``?overlay=1`` adds the overlay). A bad upload is the
client's fault, not the server's: :class:`seglib.predict.ImageError` becomes its own 4xx status (400 unreadable or
truncated, 413 too many pixels, 415 unsupported format) with ``{"error": message}``; malformed JSON, a missing
``"image"`` and bad base64 are 400. Anything else that raises is a real server error, which the server answers
with 500.

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

__all__ = ["MODEL_DIR_ENV", "MAX_PIXELS_ENV", "find_model", "max_pixels", "image_bytes", "init", "run"]

#: Set by Azure ML (and by ``azmlinfsrv --model_dir``) to the registered model's version folder.
MODEL_DIR_ENV = "AZUREML_MODEL_DIR"
#: Optional limit on decoded pixels (default :data:`seglib.predict.MAX_PIXELS`).
MAX_PIXELS_ENV = "SEGLIB_MAX_PIXELS"
JSON_TYPES = ("application/json", "text/json")

predictor: predict.Predictor | None = None


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


def max_pixels() -> int:
    """The decode limit: ``$SEGLIB_MAX_PIXELS`` (a positive integer) or seglib's default."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return predict.MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_PIXELS_ENV} must be a positive integer, got {text!r}")
    return int(text)


def init() -> None:
    """Load the model once per worker."""
    global predictor
    if not os.environ.get(MODEL_DIR_ENV):
        raise RuntimeError(f"{MODEL_DIR_ENV} is not set: Azure ML sets it; locally pass azmlinfsrv --model_dir")
    path = find_model(os.environ[MODEL_DIR_ENV])
    predictor = predict.Predictor(path, max_pixels=max_pixels())
    print(f"seglib from {Path(seglib.__file__).parent}; model {path}; input {predictor.image_size}; "
          f"max pixels {predictor.max_pixels}")


def image_bytes(body: bytes, content_type: str | None) -> bytes:
    """The image file's bytes from a request body: JSON ``{"image": base64}`` or the raw file."""
    mimetype = (content_type or "").split(";")[0].strip().lower()
    if mimetype not in JSON_TYPES:
        return body
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"the body is not valid JSON ({error}); send {{\"image\": \"<base64>\"}} or the raw "
                         f"image bytes with Content-Type application/octet-stream") from error
    if not isinstance(document, dict) or not isinstance(document.get("image"), str):
        raise BadRequest('the JSON body needs a string field "image" holding the base64 of the image file')
    try:
        text = document["image"]
        if text.startswith("data:") and "," in text:  # a data URL: data:image/png;base64,....
            text = text.split(",", 1)[1]
        return base64.b64decode("".join(text.split()), validate=True)  # line-wrapped base64 (base64 -w 76) too
    except (binascii.Error, ValueError) as error:
        raise BadRequest(f'"image" is not valid base64: {error}') from error


def _error(status: int, message: str) -> AMLResponse:
    return AMLResponse({"error": message}, status, json_str=True)


@rawhttp
def run(request) -> AMLResponse:
    """One request -> the prediction as JSON, or a 4xx answer naming what is wrong with the upload."""
    if request.method != "POST":
        return _error(405, "POST an image to /score (raw bytes, or JSON {\"image\": \"<base64>\"})")
    try:
        data = image_bytes(request.get_data(), request.headers.get("Content-Type"))
        prediction = predictor.predict_bytes(data)
    except (BadRequest, predict.ImageError) as error:
        return _error(error.status, str(error))
    overlay = request.args.get("overlay", "0").lower() in ("1", "true", "yes")
    return AMLResponse(prediction.as_json(overlay=overlay), 200, json_str=True)
