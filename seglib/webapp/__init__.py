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

Modules:

* :mod:`~seglib.webapp.settings` - the environment variables, limits and defaults, and the endpoint URL/key checks;
* :mod:`~seglib.webapp.endpoint` - the Azure ML endpoint client (:func:`endpoint_predict`), which scrubs secrets;
* :mod:`~seglib.webapp.service` - :class:`PredictionService`: samples, settings, the lazy predictor, the slots;
* :mod:`~seglib.webapp.views` - the ``web`` Blueprint: pages, routes, error answers, :func:`blend_half`;
* :mod:`~seglib.webapp.server` - :func:`gunicorn_server`, which starts ``gunicorn app:app`` on loopback, as the
  tests, the benchmark and chapter 13 do (the served app never imports it; its names are reached from here lazily).

:func:`create_app` is here, and the public names of the modules are re-exported, so ``webapp.create_app``,
``webapp.endpoint_predict`` or ``webapp.gunicorn_server`` keep working.
"""

from __future__ import annotations

import flask

from seglib.webapp.endpoint import EndpointError, endpoint_predict
from seglib.webapp.service import PredictionService
from seglib.webapp.settings import (DISPLAY_WIDTH, DRAIN_BYTES, ENDPOINT_KEY_ENV, ENDPOINT_TIMEOUT_ENV,
                                    ENDPOINT_URL_ENV, GUNICORN_THREADS, GUNICORN_WORKERS, MAX_CONCURRENT_PREDICTIONS,
                                    MAX_PIXELS, MAX_PIXELS_ENV, MAX_PREDICTIONS_ENV, MAX_SAMPLES, MAX_UPLOAD_BYTES,
                                    MAX_UPLOAD_ENV, SAMPLE_SPLIT, _endpoint_settings, default_config)
from seglib.webapp.views import blend_half, web

__all__ = ["ENDPOINT_URL_ENV", "ENDPOINT_KEY_ENV", "ENDPOINT_TIMEOUT_ENV", "MAX_UPLOAD_ENV", "MAX_PIXELS_ENV",
           "MAX_PREDICTIONS_ENV", "MAX_UPLOAD_BYTES", "MAX_PIXELS", "MAX_CONCURRENT_PREDICTIONS", "DRAIN_BYTES",
           "DISPLAY_WIDTH", "MAX_SAMPLES", "SAMPLE_SPLIT", "GUNICORN_WORKERS", "GUNICORN_THREADS", "EndpointError",
           "endpoint_predict", "blend_half", "default_config", "PredictionService", "create_app", "GunicornServer",
           "gunicorn_server", "free_port", "stop_server"]

#: Names of :mod:`seglib.webapp.server`, imported on first use (:func:`__getattr__`): the app does not need them.
_SERVER_NAMES = frozenset({"GunicornServer", "gunicorn_server", "free_port", "stop_server"})


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
