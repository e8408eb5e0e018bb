"""The web app: pick a sample frame or upload a photo, see its category mask; a JSON API and a health route.

Design:

* **One prediction path.** Local predictions call :meth:`seglib.predict.Predictor.predict_bytes`; nothing here
  resizes or normalises an image. In *App Service mode* (``SEGLIB_ENDPOINT_URL`` set) the bytes go server-side to
  the Azure ML endpoint (:func:`endpoint_predict`) with the key from ``SEGLIB_ENDPOINT_KEY``; the key stays on the
  server and is never logged or shown. Either way the answer is a :class:`~seglib.predict.Prediction`.
  The URL and key are checked when the app is made (no control characters, an http(s) URL with a host and a
  numeric port), so a bad setting fails at startup with a message naming the setting, never its value.
* **Cheap import, lazy model.** :func:`create_app` imports no TensorFlow: the model is loaded on the first request
  that needs it (``/health`` included, so a health check that answers 200 means "ready"). gunicorn workers each
  load their own copy after forking, which TensorFlow needs.
* **Untrusted input.** A sample is chosen by id from a dict built at startup, never by a path made from user
  input; uploads are capped by ``MAX_CONTENT_LENGTH`` (413); bad images get the status that
  :class:`~seglib.predict.ImageError` names (400 unreadable or truncated, 413 too many pixels, 415 format).
  Every error is an answer (JSON under ``/api/``, the page with a message elsewhere), so the server keeps serving.
* **Bounded memory.** An image is refused above ``MAX_PIXELS`` (two Cityscapes frames by default) before it is
  decoded, and at most ``MAX_CONCURRENT_PREDICTIONS`` requests per worker hold a decoded image at once (the
  other threads wait), so four threads cannot each hold the largest image. Overlays are blended in integer
  arithmetic (:func:`blend_half`), not in float32 copies of the image.
* **Small pages.** The result page shows PNG data URIs scaled down to ``DISPLAY_WIDTH``; the mask itself is
  predicted at the image's full size and the shares are counted on it.

:func:`gunicorn_server` starts ``gunicorn app:app`` on loopback, as the tests, the benchmark and chapter 13 do.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import email.utils
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import flask
import numpy as np
from PIL import Image
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge, ServiceUnavailable

from seglib import cityscapes, labels, predict, synthetic, viz

__all__ = ["ENDPOINT_URL_ENV", "ENDPOINT_KEY_ENV", "ENDPOINT_TIMEOUT_ENV", "MAX_UPLOAD_ENV", "MAX_PIXELS_ENV",
           "MAX_PREDICTIONS_ENV", "MAX_UPLOAD_BYTES", "MAX_PIXELS", "MAX_CONCURRENT_PREDICTIONS", "DRAIN_BYTES",
           "DISPLAY_WIDTH", "MAX_SAMPLES", "GUNICORN_WORKERS", "GUNICORN_THREADS", "EndpointError", "endpoint_predict",
           "blend_half", "default_config", "samples_root", "create_app", "GunicornServer", "gunicorn_server",
           "free_port", "stop_server"]

ENDPOINT_URL_ENV = "SEGLIB_ENDPOINT_URL"
ENDPOINT_KEY_ENV = "SEGLIB_ENDPOINT_KEY"
ENDPOINT_TIMEOUT_ENV = "SEGLIB_ENDPOINT_TIMEOUT"
MAX_UPLOAD_ENV = "SEGLIB_MAX_UPLOAD_BYTES"
MAX_PIXELS_ENV = "SEGLIB_MAX_PIXELS"
MAX_PREDICTIONS_ENV = "SEGLIB_MAX_CONCURRENT_PREDICTIONS"
#: Largest upload accepted: a 1024x2048 PNG photo is 3-6 MiB.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
#: Largest image decoded: two Cityscapes frames. A small JPEG can hold many pixels, and each costs memory while it
#: is predicted (RGB, resizes, mask): the library's own limit (``predict.MAX_PIXELS``, four frames) is for notebooks.
MAX_PIXELS = 2 * 1024 * 2048
#: Requests of one worker that decode and predict at the same time; the worker's other threads wait for a slot.
MAX_CONCURRENT_PREDICTIONS = 2
#: An upload over the limit but under this size is read to its end before the 413, so that the client gets it.
DRAIN_BYTES = 64 * 1024 * 1024
#: Widest picture on the result page (the mask is predicted at full size, only shown smaller).
DISPLAY_WIDTH = 1024
#: Sample frames offered on the page (the first ones of the split; the full profile has 500).
MAX_SAMPLES = 48
SAMPLE_SPLIT = "val"
#: gunicorn settings for a 2-core machine: one worker holds one copy of TensorFlow and the model, and its threads
#: overlap reading uploads and encoding answers with the model, which itself uses every core.
GUNICORN_WORKERS = 1
GUNICORN_THREADS = 4

_log = logging.getLogger(__name__)
web = flask.Blueprint("web", __name__)


# --- the Azure ML endpoint client -----------------------------------------------------------------------------

class EndpointError(RuntimeError):
    """The prediction endpoint failed; ``status`` is what the web app answers (the endpoint's own 4xx, else 502
    or 504), with the endpoint's ``Retry-After`` if it sent one with that 4xx. Messages name the endpoint's address
    but never its key."""

    def __init__(self, message: str, status: int = 502, retry_after: str | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect would carry the Authorization header to another address


_OPENER = urllib.request.build_opener(_NoRedirect)


def _public_address(url: str) -> str:
    """``url`` without user info or query string, which may hold secrets."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: create_app refuses such a URL, a direct caller gets urllib's error later
        port = ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _endpoint_message(body: bytes, url: str, key: str | None) -> str:
    """The error text of an endpoint's answer (JSON ``error``/``message``/``detail``, or plain text), scrubbed of
    secrets *before* it is cut to 300 characters, so that no secret straddling the cut survives in part."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        answer = json.loads(text)
    except ValueError:
        answer = text
    if isinstance(answer, dict):
        answer = next((answer[k] for k in ("error", "message", "detail") if k in answer), text)
    return _scrub(str(answer), url, key)[:300] or "no message"


def _retry_after(value: str | None) -> str | None:
    """An endpoint's ``Retry-After`` if it is one (seconds or an HTTP date), to pass on with its 429."""
    value = (value or "").strip()
    if re.fullmatch(r"\d{1,9}", value):
        return value
    with contextlib.suppress(TypeError, ValueError, IndexError):
        if len(value) <= 64 and value.isprintable() and email.utils.parsedate_to_datetime(value) is not None:
            return value
    return None


def _http_failure(address: str, status: int, message: str, retry_after: str | None = None) -> EndpointError:
    if status in (401, 403):
        return EndpointError(f"the prediction endpoint {address} refused this server's credentials ({status}): "
                             f"check the {ENDPOINT_KEY_ENV} app setting", 502)
    if status == 404:
        return EndpointError(f"no prediction endpoint at {address} (404): check {ENDPOINT_URL_ENV}", 502)
    if status in (408, 504):
        return EndpointError(f"the prediction endpoint {address} timed out ({status}): {message}", 504)
    if 400 <= status < 500 and status != 424:
        return EndpointError(message, status, retry_after)  # the endpoint's verdict on the image: pass it on
    return EndpointError(f"the prediction endpoint {address} failed ({status}): {message}", 502)


def _decode_answer(body: bytes, address: str) -> np.ndarray:
    try:
        answer = json.loads(body)
        if isinstance(answer, str):  # a run() that returns json.dumps(...) is encoded twice by the server
            answer = json.loads(answer)
        categories = predict.decode_mask_png(answer["mask_png"])
        if categories.shape != (answer["height"], answer["width"]):
            raise ValueError(f"mask {categories.shape} but height/width {answer['height']}x{answer['width']}")
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise EndpointError(f"the prediction endpoint {address} answered something that is not a prediction: "
                            f"{error}", 502) from None
    return categories


def _secret_forms(secret: str) -> set[str]:
    """``secret`` as it may appear in a message: itself, and escaped as ``repr`` shows it in a str or in bytes (how
    http.client's "Invalid header value b'Bearer ...\\r'" shows a key that ends in a line break)."""
    return {secret, repr(secret)[1:-1], repr(secret.encode("utf-8", errors="replace"))[2:-1]} - {""}


def _scrub(message: str, url: str, key: str | None) -> str:
    """``message`` without the key, nor a password or query string that the URL may carry, in any of the forms
    of :func:`_secret_forms` (longest first, so that no escaped form is left half replaced)."""
    parts = urllib.parse.urlsplit(url)
    forms = set().union(*(_secret_forms(secret) for secret in (key, parts.password, parts.query) if secret))
    for form in sorted(forms, key=len, reverse=True):
        message = message.replace(form, "***")
    return message


def _post(url: str, data: bytes, headers: dict[str, str], address: str, key: str | None, timeout: float) -> bytes:
    try:
        request = urllib.request.Request(url, data=bytes(data), headers=headers, method="POST")
        with _OPENER.open(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        raise _http_failure(address, error.code, _endpoint_message(error.read(), url, key),
                            _retry_after(error.headers.get("Retry-After"))) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise EndpointError(f"the prediction endpoint {address} did not answer within {timeout:g} s", 504) \
                from None
        raise EndpointError(f"the prediction endpoint {address} is unreachable: {error.reason}", 502) from None
    except TimeoutError:
        raise EndpointError(f"the prediction endpoint {address} did not answer within {timeout:g} s", 504) from None
    except OSError as error:  # reset connections, malformed HTTP answers
        raise EndpointError(f"the prediction endpoint {address} broke the connection: {error}", 502) from None
    except ValueError as error:  # a URL or header urllib cannot send; its text may quote the key, so it is not shown
        raise EndpointError(f"the request to the prediction endpoint {address} cannot be sent "
                            f"({type(error).__name__}): check {ENDPOINT_URL_ENV} and {ENDPOINT_KEY_ENV} for stray "
                            "characters", 502) from None


def endpoint_predict(url: str, key: str | None, data: bytes, timeout: float = 60.0) -> np.ndarray:
    """POST image bytes to an Azure ML endpoint running ``score.py`` -> ``(H, W) uint8`` category ids.

    Sends ``Content-Type: application/octet-stream`` and ``Authorization: Bearer <key>`` (no header when ``key`` is
    empty, as for a local ``azmlinfsrv``); the answer is :meth:`~seglib.predict.Prediction.as_json`. Failures raise
    :class:`EndpointError`: the endpoint's 4xx verdict on the image keeps its status and message; a refused key or
    wrong URL, a 5xx, an unreachable host or a bad answer is 502; a timeout is 504.
    """
    address = _public_address(url)
    headers = {"Content-Type": "application/octet-stream"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        body = _post(url, data, headers, address, key, timeout)
    except EndpointError as error:
        raise EndpointError(_scrub(str(error), url, key), error.status, error.retry_after) from None
    return _decode_answer(body, address)


# --- settings and state ---------------------------------------------------------------------------------------

def _env_number(name: str, default: int | float, kind: type = int) -> int | float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a{'n integer' if kind is int else ' number'}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {text}")
    return value


def default_config() -> dict:
    """The settings :func:`create_app` uses, from the environment (App Service's app settings)."""
    return {
        "MODEL_PATH": os.environ.get(predict.MODEL_ENV) or None,  # None: predict.default_model_path()
        "SAMPLES_ROOT": None,                                        # None: samples_root()
        "MAX_SAMPLES": MAX_SAMPLES,
        "MAX_CONTENT_LENGTH": _env_number(MAX_UPLOAD_ENV, MAX_UPLOAD_BYTES),
        "MAX_PIXELS": _env_number(MAX_PIXELS_ENV, MAX_PIXELS),
        "MAX_CONCURRENT_PREDICTIONS": _env_number(MAX_PREDICTIONS_ENV, MAX_CONCURRENT_PREDICTIONS),
        # a value pasted into a settings form often ends in a line break: stripped here, refused inside (below)
        "ENDPOINT_URL": os.environ.get(ENDPOINT_URL_ENV, "").strip() or None,
        "ENDPOINT_KEY": os.environ.get(ENDPOINT_KEY_ENV, "").strip() or None,
        "ENDPOINT_TIMEOUT": _env_number(ENDPOINT_TIMEOUT_ENV, 60.0, float),
        "DISPLAY_WIDTH": DISPLAY_WIDTH,
    }


def _check_endpoint_url(url: str) -> None:
    """Refuse an endpoint URL that every request would fail on, naming the setting but not its value (a URL may
    carry a password or a key in its query string)."""
    problem = None
    parts = urllib.parse.urlsplit(url)
    if not url.isprintable():
        problem = "contains a line break or another control character"
    elif parts.scheme not in ("http", "https"):
        problem = "must start with https:// (or http:// for a server on this machine)"
    elif not parts.hostname:
        problem = "has no host name"
    else:
        try:
            parts.port
        except ValueError:
            problem = "has a port that is not a number from 0 to 65535"
    if problem:
        raise ValueError(f"{ENDPOINT_URL_ENV} {problem}; set it to the endpoint's scoring URL, "
                         "https://<endpoint>.<region>.inference.ml.azure.com/score")


def _check_endpoint_key(key: str) -> None:
    """Refuse a key that cannot go into an ``Authorization`` header, without showing it."""
    if not (key.isascii() and key.isprintable()):
        raise ValueError(f"{ENDPOINT_KEY_ENV} contains a line break, a control character or a non-ASCII character "
                         "(its value is not shown); copy the endpoint's key again")


def _endpoint_settings(settings: dict) -> None:
    """Strip and check ``ENDPOINT_URL`` and ``ENDPOINT_KEY`` in place (an empty one is None)."""
    for name in ("ENDPOINT_URL", "ENDPOINT_KEY"):
        if settings[name] is not None:
            settings[name] = str(settings[name]).strip() or None
    if settings["ENDPOINT_URL"]:
        _check_endpoint_url(settings["ENDPOINT_URL"])
    if settings["ENDPOINT_KEY"]:
        _check_endpoint_key(settings["ENDPOINT_KEY"])


def samples_root(profile: str | None = None) -> Path:
    """Where the sample frames come from: ``$CITYSCAPES_DATASET`` if set, else the run profile's generated dataset.

    Unlike :func:`seglib.cityscapes.dataset_root`, which generates every split on first use (5,000 frames in the
    full profile), only the sample split (val) is generated here when it is missing: a web server needs nothing
    else. The frames and their ids are those the book's chapters read, as the generator names frames by index.
    """
    if os.environ.get(cityscapes.CITYSCAPES_ENV):
        return cityscapes.dataset_root(profile)
    from seglib.profiles import get_profile

    settings = get_profile(profile)
    root = cityscapes.synthetic_root(settings.synthetic_size)
    counts = {SAMPLE_SPLIT: settings.synthetic_counts[SAMPLE_SPLIT]}
    return synthetic.ensure_dataset(root, settings.synthetic_size, counts)


def _sample_index(root: str | os.PathLike, limit: int) -> dict[str, Path]:
    """``{frame id: image path}`` of the first ``limit`` frames of the sample split."""
    return {frame.stem: frame.image_path for frame in cityscapes.list_frames(root, SAMPLE_SPLIT)[:limit]}


class _Service:
    """What the routes share: the samples, the settings, the (lazily loaded) predictor and the prediction slots."""

    def __init__(self, config: Mapping):
        self.config = config
        self.endpoint_url = config["ENDPOINT_URL"]
        root = config["SAMPLES_ROOT"] or samples_root()
        self.samples = _sample_index(root, config["MAX_SAMPLES"])
        self._predictor: predict.Predictor | None = None
        self._model_path: Path | None = None
        self._lock = threading.Lock()
        slots = config["MAX_CONCURRENT_PREDICTIONS"]
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ValueError(f"MAX_CONCURRENT_PREDICTIONS must be a positive integer, got {slots!r}")
        #: held from decoding an image until its answer is encoded: bounds the images a worker holds at once
        self.slots = threading.BoundedSemaphore(slots)

    @property
    def mode(self) -> str:
        return "endpoint" if self.endpoint_url else "local"

    def predictor(self) -> predict.Predictor:
        with self._lock:
            if self._predictor is None:
                try:
                    self._model_path = Path(self.config["MODEL_PATH"] or predict.default_model_path())
                    predictor = predict.Predictor(self._model_path, max_pixels=self.config["MAX_PIXELS"])
                except (FileNotFoundError, ValueError) as error:
                    raise ServiceUnavailable(f"no model to predict with: {error}") from error
                predictor.predict_array(np.zeros((*predictor.image_size, 3), np.uint8))  # trace the graph now, once
                self._predictor = predictor
                _log.info("loaded %s", self._model_path)
            return self._predictor

    def model_name(self) -> str:
        self.predictor()
        return f"{self._model_path.parent.name}/{self._model_path.name}"

    def predict(self, data: bytes) -> predict.Prediction:
        if self.mode == "local":
            return self.predictor().predict_bytes(data)
        image = predict.decode_image(data, self.config["MAX_PIXELS"])  # refuse bad uploads before the round trip
        categories = endpoint_predict(self.endpoint_url, self.config["ENDPOINT_KEY"], data,
                                      self.config["ENDPOINT_TIMEOUT"])
        if categories.shape != image.shape[:2]:
            raise EndpointError(f"the prediction endpoint {_public_address(self.endpoint_url)} returned a "
                                f"{categories.shape} mask for a {image.shape[:2]} image", 502)
        return predict.Prediction(image, categories)

    def sample_bytes(self, sample_id: str) -> bytes:
        path = self.samples.get(sample_id)
        if path is None:
            flask.abort(404, f"there is no sample {sample_id[:80]!r}; pick one of the {len(self.samples)} "
                             "sample ids offered on the page")
        return path.read_bytes()


def _service() -> _Service:
    return flask.current_app.extensions["seglib"]


# --- answers --------------------------------------------------------------------------------------------------

def _wants_json() -> bool:
    return flask.request.path.startswith("/api/") or flask.request.path == "/health"


def _page(template: str, status: int = 200, **context) -> tuple[str, int]:
    service = _service()
    limit = service.config["MAX_CONTENT_LENGTH"]
    return flask.render_template(template, samples=list(service.samples), split=SAMPLE_SPLIT, mode=service.mode,
                                 max_upload_mib=f"{limit / 2**20:.3g}", **context), status


def _error_answer(status: int, message: str):
    if _wants_json():
        return flask.jsonify(error=message, status=status), status
    return _page("index.html", status, error=message)  # request.form is not read again: it may be the 413


def _data_uri(array: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(predict.encode_png(array)).decode("ascii")


def blend_half(image: np.ndarray, mask_rgb: np.ndarray) -> np.ndarray:
    """``viz.overlay(image, mask_rgb, alpha=0.5)`` in integer arithmetic: both ``(H, W, 3) uint8`` -> ``uint8``.

    ``viz.overlay`` computes ``round(0.5 * a + 0.5 * b)`` in float32 (exact for uint8 inputs) and ``np.round``
    rounds halves to even; here ``(a + b) // 2`` is bumped by one where ``a + b`` is odd and its half is odd, which
    is the same rounding, with 2-byte temporaries instead of 4-byte copies of the image.
    """
    if image.shape != mask_rgb.shape or image.dtype != np.uint8 or mask_rgb.dtype != np.uint8:
        raise ValueError(f"image and mask_rgb must be uint8 arrays of one shape, got {image.shape} {image.dtype} "
                         f"and {mask_rgb.shape} {mask_rgb.dtype}")
    total = image.astype(np.uint16)
    total += mask_rgb
    half = total >> 1
    half += total & half & 1
    return half.astype(np.uint8)


def _display(prediction: predict.Prediction, width: int) -> dict[str, str]:
    """Input, colour mask and overlay as PNG data URIs, scaled down to at most ``width`` pixels wide (the overlay
    is blended on the scaled-down pictures)."""
    height, full_width = prediction.categories.shape
    image, categories = prediction.image, prediction.categories
    if full_width > width:
        size = (width, max(1, round(height * width / full_width)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        categories = np.asarray(Image.fromarray(categories).resize(size, Image.Resampling.NEAREST))
    colored = viz.colorize_categories(categories)
    return {"input": _data_uri(image), "mask": _data_uri(colored), "overlay": _data_uri(blend_half(image, colored))}


def _legend(shares: Mapping[str, float]) -> list[dict]:
    return [{"name": name, "color": "#{:02x}{:02x}{:02x}".format(*labels.CATEGORY_PALETTE[index]),
             "share": shares[name], "percent": f"{100 * shares[name]:.2f} %"}
            for index, name in enumerate(labels.CATEGORY_NAMES)]


def _result_page(data: bytes, title: str, selected: str | None = None):
    service = _service()
    with service.slots:
        start = time.perf_counter()
        prediction = service.predict(data)
        seconds = time.perf_counter() - start
        images = _display(prediction, service.config["DISPLAY_WIDTH"])
    height, width = prediction.categories.shape
    return _page("result.html", title=title, selected=selected, height=height, width=width,
                 milliseconds=f"{1000 * seconds:.0f}", images=images, legend=_legend(prediction.shares))


def _upload_bytes() -> bytes:
    """The API's image: the multipart field ``image``, else the raw request body."""
    if flask.request.mimetype == "multipart/form-data":
        upload = flask.request.files.get("image")
        if upload is None:
            flask.abort(400, "send the image as the multipart field 'image', or as the raw request body")
        return upload.read()
    return flask.request.get_data(cache=False)


# --- routes ---------------------------------------------------------------------------------------------------

@web.get("/")
def index():
    return _page("index.html")


@web.post("/predict")
def predict_page():
    upload = flask.request.files.get("image")
    if upload is not None and upload.filename:
        return _result_page(upload.read(), f"Upload: {upload.filename}")
    sample_id = flask.request.form.get("sample", "")
    if not sample_id:
        flask.abort(400, "choose a sample frame or an image file to upload")
    return _result_page(_service().sample_bytes(sample_id), f"Sample {sample_id}", sample_id)


@web.get("/sample/<sample_id>")
def sample_page(sample_id: str):
    return _result_page(_service().sample_bytes(sample_id), f"Sample {sample_id}", sample_id)


def _answer_json(prediction: predict.Prediction, overlay: bool) -> dict:
    """``prediction.as_json(overlay)``, with the overlay blended by :func:`blend_half` (the same pixels)."""
    answer = prediction.as_json()
    if overlay:
        blended = blend_half(prediction.image, prediction.colored())
        answer["overlay_png"] = base64.b64encode(predict.encode_png(blended)).decode("ascii")
    return answer


@web.post("/api/predict")
def api_predict():
    data = _upload_bytes()
    service = _service()
    overlay = flask.request.args.get("overlay", "").lower() in ("1", "true", "yes")
    with service.slots:
        start = time.perf_counter()
        prediction = service.predict(data)
        predicted = time.perf_counter()
        response = flask.jsonify(_answer_json(prediction, overlay))
    # where the time went, in the standard header browsers' developer tools and the serving benchmark read
    response.headers["Server-Timing"] = (f"predict;dur={1000 * (predicted - start):.1f}, "
                                         f"encode;dur={1000 * (time.perf_counter() - predicted):.1f}")
    return response


@web.get("/health")
def health():
    service = _service()
    answer = {"status": "ok", "predictions": service.mode, "samples": len(service.samples),
              "max_upload_bytes": service.config["MAX_CONTENT_LENGTH"], "max_pixels": service.config["MAX_PIXELS"]}
    if service.mode == "local":
        answer.update(model=service.model_name(), input_size=list(service.predictor().image_size))
    else:
        answer["endpoint"] = _public_address(service.endpoint_url)
    return flask.jsonify(answer)


def _discard_upload(limit: int) -> None:
    """Read and drop an upload over ``limit`` (up to ``DRAIN_BYTES``): a client that is still sending it when the
    413 comes would otherwise see its connection reset instead of the answer. Werkzeug refused it unread; a body
    under the limit (a 413 for a form field) has been partly parsed, and its rest is left to the server."""
    remaining = flask.request.content_length or 0
    if not limit < remaining <= DRAIN_BYTES:
        return
    stream = flask.request.environ["wsgi.input"]
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            break
        remaining -= len(chunk)


def _too_large(error: RequestEntityTooLarge) -> str:
    """The 413's message: the upload's size, or (for a body under the limit) a form field or the form's parts."""
    limit = _service().config["MAX_CONTENT_LENGTH"]
    length = flask.request.content_length
    if length is None or length > limit:
        _discard_upload(limit)
        return f"the upload is larger than the {limit:,} bytes this server accepts"
    config = flask.current_app.config
    return (f"a form field is larger than the {config['MAX_FORM_MEMORY_SIZE']:,} bytes this server accepts outside "
            f"a file, or the form has more than {config['MAX_FORM_PARTS']:,} parts ({error.description})")


#: Headers of an error that its answer keeps: the methods a 405 allows, when to retry a 429 or 503.
_KEPT_HEADERS = ("Allow", "Retry-After")


@web.app_errorhandler(HTTPException)
def _http_error(error: HTTPException):
    if isinstance(error, RequestEntityTooLarge):
        return _error_answer(413, _too_large(error))
    if isinstance(error, InternalServerError):
        _log.error("internal error", exc_info=error.original_exception)
        return _error_answer(500, "the server failed on this request; it has been logged")
    response = flask.make_response(_error_answer(error.code or 500, error.description or error.name))
    for name, value in error.get_headers():
        if name in _KEPT_HEADERS:
            response.headers[name] = value
    return response


@web.app_errorhandler(predict.ImageError)
def _image_error(error: predict.ImageError):
    return _error_answer(error.status, str(error))


@web.app_errorhandler(EndpointError)
def _endpoint_error(error: EndpointError):
    _log.warning("endpoint failure %d: %s", error.status, error)
    response = flask.make_response(_error_answer(error.status, str(error)))
    if error.retry_after:
        response.headers["Retry-After"] = error.retry_after
    return response


def create_app(config: dict | None = None) -> flask.Flask:
    """The Flask app. ``config`` overrides :func:`default_config` (keys ``MODEL_PATH``, ``SAMPLES_ROOT``,
    ``MAX_SAMPLES``, ``MAX_CONTENT_LENGTH``, ``MAX_PIXELS``, ``MAX_CONCURRENT_PREDICTIONS``, ``ENDPOINT_URL``,
    ``ENDPOINT_KEY``, ``ENDPOINT_TIMEOUT``, ``DISPLAY_WIDTH``); unknown keys are refused, and so are an endpoint
    URL or key that no request could use (``ValueError`` naming the setting, not its value)."""
    settings = default_config()
    unknown = sorted(set(config or {}) - set(settings))
    if unknown:
        raise ValueError(f"unknown web app setting(s) {unknown}; known: {', '.join(settings)}")
    settings.update(config or {})
    _endpoint_settings(settings)
    app = flask.Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings["MAX_CONTENT_LENGTH"])
    app.extensions["seglib"] = _Service(settings)
    app.register_blueprint(web)
    return app


# --- running it under gunicorn --------------------------------------------------------------------------------

@dataclass
class GunicornServer:
    """A running ``gunicorn`` started by :func:`gunicorn_server`."""

    url: str
    command: list[str]
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (another program may take it before you do)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


#: gunicorn's line naming the address it bound, here the port the system chose for ``--bind 127.0.0.1:0``.
_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+) ")
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGTERM when this process dies, even by SIGKILL (Linux
    ``prctl(PR_SET_PDEATHSIG)``), so that a killed test run or notebook kernel leaves no server behind; None on
    other systems. The signal comes when the *thread* that started the child ends: start servers from a thread
    that outlives them (the main thread does)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: the child only calls it
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_death_signal


def _wait_for_port(process: subprocess.Popen, log_path: Path, deadline: float) -> int:
    """The port gunicorn reports in its log once it has bound its socket."""
    while time.monotonic() < deadline:
        found = _LISTENING.search(log_path.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    raise TimeoutError(f"gunicorn did not report its address in time:\n{log_path.read_text()[-3000:]}")


def _wait_until_healthy(server: GunicornServer, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=max(1.0, deadline - time.monotonic())):
                return
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"gunicorn is up but not healthy ({error.code}): {error.read()[:500]!r}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise TimeoutError(f"gunicorn did not answer /health in time:\n{server.log_tail()}")


def stop_server(process: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True``: SIGTERM, then SIGKILL to its group after 30 s."""
    if process.poll() is None:
        process.terminate()  # gunicorn's graceful shutdown stops its workers too
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what this call started
            process.wait()


@contextlib.contextmanager
def gunicorn_server(app: str = "app:app", cwd: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
                    workers: int = GUNICORN_WORKERS, threads: int = GUNICORN_THREADS,
                    ready_timeout: float = 180.0) -> Iterator[GunicornServer]:
    """Run ``gunicorn app:app`` (from ``cwd``) bound to 127.0.0.1 on a port the system picks, with ``env`` added to
    the environment; yields once ``/health`` answers 200 and stops the server (and its workers) on exit.

    The port is read from gunicorn's log, so no other program can take it between choosing and binding. The log
    is deleted when the server stops cleanly; if it fails to start or exits with an error, the log is kept and its
    path printed. On Linux the server also gets SIGTERM if this process dies without stopping it.
    """
    executable = Path(sys.executable).with_name("gunicorn")
    launcher = [str(executable)] if executable.is_file() else [sys.executable, "-m", "gunicorn"]
    command = [*launcher, "--bind", "127.0.0.1:0", "--timeout", "600", "--workers", str(workers),
               "--threads", str(threads), app]
    handle, name = tempfile.mkstemp(prefix="gunicorn-", suffix=".log")
    log_path = Path(name)
    with os.fdopen(handle, "wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent())
    started = False
    try:
        deadline = time.monotonic() + ready_timeout
        server = GunicornServer(f"http://127.0.0.1:{_wait_for_port(process, log_path, deadline)}", command, process,
                                log_path)
        _wait_until_healthy(server, deadline)
        started = True
        yield server
    finally:
        stop_server(process)
        if started and process.returncode == 0:
            log_path.unlink(missing_ok=True)
        else:
            print(f"gunicorn's log is kept at {log_path}", file=sys.stderr)
