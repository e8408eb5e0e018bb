"""Pages and routes: the ``web`` Blueprint (the page, a sample's or an upload's result page, the JSON API, the
health route) and its error handlers, which turn every error into an answer (JSON under ``/api/`` and for
``/health``, the page with a message elsewhere); :func:`blend_half` blends the overlays in integer arithmetic.

Admission and uploads (see :mod:`seglib.webapp` for why):

* a prediction route (``POST /predict``, ``GET /sample/<id>``, ``POST /api/predict``) first takes a place from
  :attr:`PredictionService.admission` without waiting; when none is free it is answered 503 with ``Retry-After``
  before its body is read. ``/health``, the page and every error answer are never counted;
* under gunicorn an admitted request's body must arrive within ``SEGLIB_UPLOAD_TIMEOUT`` seconds, each read
  waiting at most 30 s (:class:`_UploadGuard`), else 408;
* the body is read once, with an explicit bound (:func:`_read_body`): ``limit + 1`` bytes of a chunked body are
  read, and one more than ``limit`` is a 413 (werkzeug's stream for a chunked body stops at the limit as if the
  body ended there, so a larger upload came out cut: a 400). A form is parsed by werkzeug from that copy.
"""

from __future__ import annotations

import base64
import io
import logging
import socket
import threading
import time
from collections.abc import Iterator, Mapping

import flask
import numpy as np
from PIL import Image
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import (BadRequest, HTTPException, InternalServerError,
                                 RequestEntityTooLarge, RequestTimeout, ServiceUnavailable)

from seglib import labels, predict, viz
from seglib.webapp.endpoint import EndpointError, _public_address
from seglib.webapp.service import RETRY_AFTER_SECONDS, PredictionService
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


def _receive_upload() -> tuple[bytes, MultiDict, MultiDict]:
    """The request's body, read once (:func:`_read_body`: bounded in size and, under gunicorn, in time), and its
    form fields and files, parsed by werkzeug from that copy in memory (with Flask's form limits, a 413 over them).
    A body that is not a form has no fields or files."""
    data = _read_body(_service().config["MAX_CONTENT_LENGTH"])
    _upload_done()
    request = flask.request
    if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return data, MultiDict(), MultiDict()
    _, form, files = request.make_form_data_parser().parse(io.BytesIO(data), request.mimetype, len(data),
                                                             request.mimetype_params)
    return data, form, files


def _file_bytes(files: MultiDict, name: str = "image") -> tuple[bytes, str] | None:
    """The bytes and file name of the form's file ``name``, or None; every file of the form is closed."""
    try:
        upload = files.get(name)
        return None if upload is None else (upload.read(), upload.filename or "")
    finally:
        for _, upload in files.items(multi=True):
            upload.close()


def _upload_bytes() -> bytes:
    """The API's image: the multipart field ``image``, else the raw request body."""
    data, _, files = _receive_upload()
    if flask.request.mimetype == "multipart/form-data":
        upload = _file_bytes(files)
        if upload is None:
            flask.abort(400, "send the image as the multipart field 'image', or as the raw request body")
        return upload[0]
    return data


def _read_body(limit: int) -> bytes:
    """The raw request body, refused (413) above ``limit`` bytes whether its size was declared (Content-Length:
    refused unread) or not (chunked: ``limit + 1`` bytes are read to tell). Read from ``wsgi.input`` itself:
    werkzeug's stream for a chunked body ends at the limit as if the body did, so a larger upload came out cut
    (a 400 for a truncated image) instead of a 413. A body of unknown length on a server that does not end the
    stream (no ``wsgi.input_terminated``) is taken as empty, as werkzeug does."""
    request = flask.request
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    environ = request.environ
    if length is None and not environ.get("wsgi.input_terminated"):
        return b""
    wanted = limit + 1 if length is None else length
    stream = environ["wsgi.input"]
    parts, size = [], 0
    try:
        while size < wanted:
            chunk = stream.read(min(wanted - size, 1 << 20))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    except OSError as error:  # a read timed out, the deadline shut the socket, or the chunked body broke off
        raise _cut_short(error) from error
    except Exception as error:  # the server could not parse the body (gunicorn: a malformed chunk size, say)
        _log.info("unreadable request body: %r", error)
        raise BadRequest("the request body is malformed (its chunked encoding, say); send it again") from error
    if size > limit:
        flask.g.seglib_over_limit = True
        raise RequestEntityTooLarge()
    if length is not None and size < length:
        raise _cut_short(None)
    return b"".join(parts)


# --- admission and upload deadlines ---------------------------------------------------------------------------

#: The routes that predict: each takes a place from ``PredictionService.admission`` or is answered 503.
_PREDICTION_ENDPOINTS = frozenset({"web.predict_page", "web.sample_page", "web.api_predict"})


class _UploadGuard:
    """Bounds the time a request's body may take to arrive over gunicorn's socket (``environ["gunicorn.socket"]``):
    each read waits at most ``idle`` seconds (a socket timeout), and after ``total`` seconds the socket's read side
    is shut down, so that a read blocked on a client that trickles a byte a second returns at once (as at the end
    of the stream) instead of holding the thread. :meth:`close` cancels the deadline and restores the timeout."""

    def __init__(self, sock: socket.socket, idle: float, total: float):
        self.total, self.idle = total, idle
        self.expired = False
        self._sock, self._lock, self._open = sock, threading.Lock(), True
        self._previous = sock.gettimeout()
        sock.settimeout(idle)
        self._timer = threading.Timer(total, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:  # never after close(): by then gunicorn may reuse or close the socket
            if self._open:
                self.expired = True
                try:
                    self._sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass

    def close(self) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
        self._timer.cancel()
        try:
            self._sock.settimeout(self._previous)
        except OSError:
            pass


def _has_body() -> bool:
    return bool(flask.request.content_length) or "chunked" in flask.request.headers.get("Transfer-Encoding", "")


@web.before_request
def _admit():
    """A prediction request takes a place or gets a 503 at once; under gunicorn its upload gets a deadline."""
    if flask.request.endpoint not in _PREDICTION_ENDPOINTS:
        return
    service = _service()
    if not service.admission.acquire(blocking=False):
        raise ServiceUnavailable(f"the server is busy: it is already working on the {service.max_admitted} "
                                 f"prediction requests it takes at once; try again in {RETRY_AFTER_SECONDS} s",
                                 retry_after=RETRY_AFTER_SECONDS)
    flask.g.seglib_admitted = True
    sock = flask.request.environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket) and _has_body():
        flask.g.seglib_upload = _UploadGuard(sock, service.upload_idle_timeout, service.upload_timeout)


@web.teardown_request
def _release(error: BaseException | None) -> None:
    guard = flask.g.pop("seglib_upload", None)
    if guard is not None:
        guard.close()
    if flask.g.pop("seglib_admitted", False):
        _service().admission.release()


def _upload_done() -> None:
    """The whole body has arrived (:func:`_read_body` checked it): its deadline ends here, not after the prediction."""
    guard = flask.g.get("seglib_upload")
    if guard is not None:
        guard.close()


def _causes(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _cut_short(error: BaseException | None) -> HTTPException:
    """The answer to a body that stopped arriving: 408 when a read timed out or the deadline passed, else 400."""
    guard = flask.g.get("seglib_upload")
    if (guard is not None and guard.expired) or any(isinstance(cause, TimeoutError) for cause in _causes(error)):
        service = _service()
        return RequestTimeout(f"the upload did not arrive in time (this server waits {service.upload_timeout:g} s "
                              f"for a whole upload, {service.upload_idle_timeout:g} s for each part of it); "
                              "send it again")
    return BadRequest("the upload ended before all of it arrived; send it again")


# --- routes ---------------------------------------------------------------------------------------------------

@web.get("/")
def index():
    return _page("index.html")


@web.post("/predict")
def predict_page():
    _, form, files = _receive_upload()
    upload = _file_bytes(files)
    if upload is not None and upload[1]:
        return _result_page(upload[0], f"Upload: {upload[1]}")
    sample_id = form.get("sample", "")
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
    413 comes would otherwise see its connection reset instead of the answer. Werkzeug refused a declared size
    unread; of a chunked body, what follows the ``limit + 1`` bytes read is drained to its end (on a server that
    ends the stream). A body under the limit (a 413 for a form field) has been partly parsed, and its rest is left
    to the server. The upload's deadline (:class:`_UploadGuard`) bounds the time this takes."""
    environ = flask.request.environ
    length = flask.request.content_length
    if length is None:
        if not environ.get("wsgi.input_terminated"):
            return
        remaining = DRAIN_BYTES
    elif limit < length <= DRAIN_BYTES:
        remaining = length
    else:
        return
    stream = environ["wsgi.input"]
    try:
        while remaining > 0:
            chunk = stream.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)
    except Exception:  # the client stopped sending, its deadline passed or its chunks broke: answer anyway
        pass


def _over_limit(limit: int) -> bool:
    """Whether the body is over the upload limit: by its Content-Length, or (chunked) by what was read of it."""
    length = flask.request.content_length
    if length is not None:
        return length > limit
    return bool(flask.g.get("seglib_over_limit"))


def _too_large(error: RequestEntityTooLarge) -> str:
    """The 413's message: the upload's size, or (for a body under the limit) a form field or the form's parts."""
    limit = _service().config["MAX_CONTENT_LENGTH"]
    if _over_limit(limit):
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
