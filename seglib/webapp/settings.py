"""The web app's settings: the environment variables it reads (App Service's app settings), its limits and defaults,
and the checks that refuse an endpoint URL or key no request could use, naming the setting but never its value."""

from __future__ import annotations

import os
import urllib.parse

from seglib import datasets, predict

__all__ = ["ENDPOINT_URL_ENV", "ENDPOINT_KEY_ENV", "ENDPOINT_TIMEOUT_ENV", "MAX_UPLOAD_ENV", "MAX_PIXELS_ENV",
           "MAX_PREDICTIONS_ENV", "MAX_UPLOAD_BYTES", "MAX_PIXELS", "MAX_CONCURRENT_PREDICTIONS", "DRAIN_BYTES",
           "DISPLAY_WIDTH", "MAX_SAMPLES", "SAMPLE_SPLIT", "GUNICORN_WORKERS", "GUNICORN_THREADS", "default_config"]

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
#: The split the sample frames come from (the one :func:`seglib.datasets.samples_root` generates).
SAMPLE_SPLIT = datasets.SAMPLE_SPLIT
#: gunicorn settings for a 2-core machine: one worker holds one copy of TensorFlow and the model, and its threads
#: overlap reading uploads and encoding answers with the model, which itself uses every core.
GUNICORN_WORKERS = 1
GUNICORN_THREADS = 4


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
    """The settings :func:`~seglib.webapp.create_app` uses, from the environment (App Service's app settings)."""
    return {
        "MODEL_PATH": os.environ.get(predict.MODEL_ENV) or None,  # None: predict.default_model_path()
        "SAMPLES_ROOT": None,                                        # None: datasets.samples_root()
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

