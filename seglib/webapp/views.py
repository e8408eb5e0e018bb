"""Pages and routes: the ``web`` Blueprint (the page, a sample's or an upload's result page, the JSON API, the
health route) and its error handlers, which turn every error into an answer (JSON under ``/api/`` and for
``/health``, the page with a message elsewhere); :func:`blend_half` blends the overlays in integer arithmetic."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping

import flask
import numpy as np
from PIL import Image
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from seglib import labels, predict, viz
from seglib.webapp.endpoint import EndpointError, _public_address
from seglib.webapp.service import PredictionService
from seglib.webapp.settings import DRAIN_BYTES, SAMPLE_SPLIT

__all__ = ["web", "blend_half"]

_log = logging.getLogger(__name__)
web = flask.Blueprint("web", __name__)


def _service() -> PredictionService:
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
