"""The web app: pick a sample frame or upload a photo, see its category mask; a JSON API and a health route.

Design:

* **One prediction path.** Local predictions call :meth:`seglib.predict.Predictor.predict_bytes`; nothing here
  resizes or normalises an image. In *App Service mode* (``SEGLIB_ENDPOINT_URL`` set) the bytes go server-side to
  the Azure ML endpoint (:func:`endpoint_predict`) with the key from ``SEGLIB_ENDPOINT_KEY``; the key stays on the
  server and is never logged or shown. Either way the answer is a :class:`~seglib.predict.Prediction`.
  The URL, key and timeout are checked when the app is made (no control characters, an http(s) URL with a host,
  a numeric port and no ``user:password@``; a timeout that is a finite number of seconds up to
  ``MAX_ENDPOINT_TIMEOUT``), so a bad setting fails at startup with a message naming the setting, never a secret.
  The endpoint's answer is read with a bound derived from the image sent, its mask's declared size is checked
  before decoding, and every message scrubs the key in any form it could be echoed in (:mod:`~seglib.webapp.endpoint`).
* **Cheap import, lazy model.** :func:`create_app` imports no TensorFlow: the model is loaded on the first request
  that needs it (``/health`` included, so a health check that answers 200 means "ready"). gunicorn workers each
  load their own copy after forking, which TensorFlow needs.
* **Untrusted input.** A sample is chosen by id from a dict built at startup, never by a path made from user
  input; uploads are capped by ``MAX_CONTENT_LENGTH`` (413); bad images get the status that
  :class:`~seglib.predict.ImageError` names (400 unreadable or truncated, 413 too many pixels, 415 format).
  Every error is an answer (JSON under ``/api/``, the page with a message elsewhere), so the server keeps serving.
  A missing model is a 503 "no model loaded" that does not show the server's path (the log names it).
* **Bounded memory.** An image is refused above ``MAX_PIXELS`` (two Cityscapes frames by default) before it is
  decoded, and at most ``MAX_CONCURRENT_PREDICTIONS`` requests per worker hold a decoded image at once (the
  other admitted requests wait), so the worker's threads cannot each hold the largest image. Overlays are
  blended in integer arithmetic (:func:`blend_half`), not in float32 copies of the image.
* **Small pages.** The result page shows PNG data URIs scaled down to ``DISPLAY_WIDTH``; the mask itself is
  predicted at the image's full size and the shares are counted on it.
* **Bounded bodies.** The body is read by the app with an explicit bound: ``limit + 1`` bytes of a chunked upload
  are read and one byte over the limit is a 413, as a declared Content-Length over it is (werkzeug's stream for a
  chunked body ends quietly at the limit, so a larger image used to arrive cut and get 400). A form is parsed from
  that copy; a body that breaks off, or a chunked encoding the server cannot parse, is a 400, never a 500.
* **Load shedding.** A worker takes on at most ``MAX_CONCURRENT_PREDICTIONS`` + ``MAX_WAITING_PREDICTIONS``
  prediction requests (2 + 6 by default: 2 hold a decoded image in a slot, the others wait for one or are still
  uploading; :attr:`PredictionService.admission`). One more is answered 503 with ``Retry-After`` at once, before
  its body is read, instead of queueing without bound. ``/health`` and the page are never counted; ``/health``
  takes no slot and reads nothing from the client.
* **Slow clients.** gunicorn's ``gthread`` worker (``gunicorn.conf.py``: one worker, ``GUNICORN_THREADS`` = 16
  threads, twice the admitted requests) gives each request a thread, so a client that trickles its upload holds
  one. The admission bound caps how many threads such uploads can hold, and the rest serve ``/health``, the page
  and the 503s. An admitted upload must arrive within ``UPLOAD_TIMEOUT`` seconds (default 120), each read
  waiting at most 30 s (a socket timeout on ``environ["gunicorn.socket"]``; at the deadline its read side is shut
  down, which ends a read blocked on a client that sends a byte a second), else 408. gthread itself waits for a
  new connection's first byte (up to 5 s) and for kept-alive connections without a thread, and drains the unread
  body of a refused request for at most 5 s.
  Not covered: a client that trickles its request *headers* holds a thread inside gunicorn, before the app sees
  the request (and a connection that sends nothing holds one for its first 5 s); about ``GUNICORN_THREADS`` - 8
  such clients at once would starve ``/health`` again. An async worker
  (gevent, eventlet) would not hold a thread per client, but it is not installed and TensorFlow's predict blocks
  an event loop; App Service's front end may buffer or time such clients out (its request timeout is reported as
  230 s in Microsoft Q&A answers, not in the App Service reference; whether it buffers request bodies is
  unverified here).

Modules:

* :mod:`~seglib.webapp.settings` - the environment variables, limits and defaults, and the endpoint URL/key checks;
* :mod:`~seglib.webapp.endpoint` - the Azure ML endpoint client (:func:`endpoint_predict`), which scrubs secrets;
* :mod:`~seglib.webapp.service` - :class:`PredictionService`: samples, settings, the lazy predictor, the slots,
  the admission counter and the upload deadline's settings;
* :mod:`~seglib.webapp.views` - the ``web`` Blueprint: pages, routes, admission and bounded body reading, error
  answers, :func:`blend_half`;
* :mod:`~seglib.webapp.server` - :func:`gunicorn_server`, which starts ``gunicorn app:app`` on loopback, as the
  tests, the benchmark and chapter 13 do, each server with its own gunicorn control socket (the served app never
  imports it; its names are reached from here lazily).

:func:`create_app` is here, and the public names of the modules are re-exported, so ``webapp.create_app``,
``webapp.endpoint_predict`` or ``webapp.gunicorn_server`` keep working.
"""

from __future__ import annotations

import flask

from seglib.webapp.endpoint import EndpointError, endpoint_predict
from seglib.webapp.service import PredictionService
from seglib.webapp.settings import (DISPLAY_WIDTH, DRAIN_BYTES, ENDPOINT_KEY_ENV, ENDPOINT_TIMEOUT_ENV,
                                    ENDPOINT_URL_ENV, MAX_CONCURRENT_PREDICTIONS, MAX_PIXELS, MAX_PIXELS_ENV,
                                    MAX_PREDICTIONS_ENV, MAX_SAMPLES, MAX_UPLOAD_BYTES, MAX_UPLOAD_ENV, SAMPLE_SPLIT,
                                    GUNICORN_THREADS, GUNICORN_WORKERS, MAX_WAITING_ENV, MAX_WAITING_PREDICTIONS,
                                    UPLOAD_TIMEOUT, UPLOAD_TIMEOUT_ENV, _endpoint_settings, default_config)
from seglib.webapp.views import blend_half, web

__all__ = ["ENDPOINT_URL_ENV", "ENDPOINT_KEY_ENV", "ENDPOINT_TIMEOUT_ENV", "MAX_UPLOAD_ENV", "MAX_PIXELS_ENV",
           "MAX_PREDICTIONS_ENV", "MAX_UPLOAD_BYTES", "MAX_PIXELS", "MAX_CONCURRENT_PREDICTIONS", "DRAIN_BYTES",
           "DISPLAY_WIDTH", "MAX_SAMPLES", "SAMPLE_SPLIT", "GUNICORN_WORKERS", "GUNICORN_THREADS", "MAX_WAITING_ENV",
           "MAX_WAITING_PREDICTIONS", "UPLOAD_TIMEOUT_ENV", "UPLOAD_TIMEOUT", "EndpointError",
           "endpoint_predict", "blend_half", "default_config", "PredictionService", "create_app", "GunicornServer",
           "gunicorn_server", "free_port", "stop_server"]

#: Names of :mod:`seglib.webapp.server`, imported on first use (:func:`__getattr__`): the app does not need them.
_SERVER_NAMES = frozenset({"GunicornServer", "gunicorn_server", "free_port", "stop_server"})


def create_app(config: dict | None = None) -> flask.Flask:
    """The Flask app. ``config`` overrides :func:`default_config` (keys ``MODEL_PATH``, ``SAMPLES_ROOT``,
    ``MAX_SAMPLES``, ``MAX_CONTENT_LENGTH``, ``MAX_PIXELS``, ``MAX_CONCURRENT_PREDICTIONS``,
    ``MAX_WAITING_PREDICTIONS``, ``UPLOAD_TIMEOUT``, ``ENDPOINT_URL``, ``ENDPOINT_KEY``, ``ENDPOINT_TIMEOUT``,
    ``DISPLAY_WIDTH``); unknown keys are refused, and so are an endpoint URL that no request could use (a control
    character, no host, user info, a bad port), a key with a control character, and a timeout that is not a finite
    number of seconds up to ``MAX_ENDPOINT_TIMEOUT`` (``ValueError`` naming the setting, not a secret value)."""
    settings = default_config()
    unknown = sorted(set(config or {}) - set(settings))
    if unknown:
        raise ValueError(f"unknown web app setting(s) {unknown}; known: {', '.join(settings)}")
    settings.update(config or {})
    _endpoint_settings(settings)
    app = flask.Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings["MAX_CONTENT_LENGTH"])
    app.extensions["seglib"] = PredictionService(settings)
    app.register_blueprint(web)
    return app


def __getattr__(name: str):
    """``webapp.gunicorn_server`` and the other harness names, from :mod:`seglib.webapp.server` on first use."""
    if name in _SERVER_NAMES:
        from seglib.webapp import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SERVER_NAMES})
