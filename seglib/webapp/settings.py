"""The web app's settings: the environment variables it reads (App Service's app settings), its limits and defaults,
and the checks that refuse an endpoint URL, key or timeout no request could use, naming the setting but never a
value that may be secret (the URL's, which may carry a password, or the key's)."""

from __future__ import annotations

import math
import numbers
import os
import urllib.parse

from seglib import datasets, predict

__all__ = ["ENDPOINT_URL_ENV", "ENDPOINT_KEY_ENV", "ENDPOINT_TIMEOUT_ENV", "MAX_UPLOAD_ENV", "MAX_PIXELS_ENV",
           "MAX_PREDICTIONS_ENV", "MAX_UPLOAD_BYTES", "MAX_PIXELS", "MAX_CONCURRENT_PREDICTIONS", "DRAIN_BYTES",
           "DISPLAY_WIDTH", "MAX_SAMPLES", "SAMPLE_SPLIT", "GUNICORN_WORKERS", "GUNICORN_THREADS", "ENDPOINT_TIMEOUT",
           "MAX_ENDPOINT_TIMEOUT", "MAX_WAITING_ENV", "UPLOAD_TIMEOUT_ENV", "MAX_WAITING_PREDICTIONS", "UPLOAD_TIMEOUT",
           "default_config", "check_endpoint_timeout"]

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
#: Seconds a prediction waits for the endpoint, the whole exchange (``SEGLIB_ENDPOINT_TIMEOUT``).
ENDPOINT_TIMEOUT = 60.0
#: The longest timeout accepted: ten minutes, well past the 230 s App Service's front end waits for any answer, so
#: no useful value is refused, while ``nan``, ``inf`` or ``1e308`` (which urllib cannot use) are.
MAX_ENDPOINT_TIMEOUT = 600.0
#: Widest picture on the result page (the mask is predicted at full size, only shown smaller).
DISPLAY_WIDTH = 1024
#: Sample frames offered on the page (the first ones of the split; the full profile has 500).
MAX_SAMPLES = 48
#: The split the sample frames come from (the one :func:`seglib.datasets.samples_root` generates).
SAMPLE_SPLIT = datasets.SAMPLE_SPLIT
MAX_WAITING_ENV = "SEGLIB_MAX_WAITING_PREDICTIONS"
UPLOAD_TIMEOUT_ENV = "SEGLIB_UPLOAD_TIMEOUT"
#: Prediction requests a worker admits beyond its ``MAX_CONCURRENT_PREDICTIONS`` slots (waiting for a slot, or
#: still sending their upload): with the default 2 slots, 8 requests in all, the concurrency chapter 13 and
#: benchmarks/bench_serving.py load the app with. One more is answered 503 at once instead of queueing behind them.
MAX_WAITING_PREDICTIONS = 6
#: Seconds an admitted request may take to send its whole body (a 16 MiB upload at 1.2 Mbit/s); then it gets 408.
UPLOAD_TIMEOUT = 120.0
#: gunicorn's worker processes: one, on a 2-core machine (each holds its own TensorFlow and model, whose thread pool
#: already uses every core). The same value is in the repository's ``gunicorn.conf.py``.
GUNICORN_WORKERS = 1
#: gunicorn ``gthread`` threads per worker: more than the prediction requests a worker admits
#: (``MAX_CONCURRENT_PREDICTIONS`` + ``MAX_WAITING_PREDICTIONS``, 2 + 6 by default), so that ``/health``,
#: the page and the quick 503s always find a thread while admitted requests upload, wait or predict.
#: The same value is in the repository's ``gunicorn.conf.py``.
GUNICORN_THREADS = 16


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
        "MAX_WAITING_PREDICTIONS": _env_number(MAX_WAITING_ENV, MAX_WAITING_PREDICTIONS),
        "UPLOAD_TIMEOUT": float(_env_number(UPLOAD_TIMEOUT_ENV, UPLOAD_TIMEOUT, float)),
        # a value pasted into a settings form often ends in a line break: stripped here, refused inside (below)
        "ENDPOINT_URL": os.environ.get(ENDPOINT_URL_ENV, "").strip() or None,
        "ENDPOINT_KEY": os.environ.get(ENDPOINT_KEY_ENV, "").strip() or None,
        "ENDPOINT_TIMEOUT": _env_number(ENDPOINT_TIMEOUT_ENV, ENDPOINT_TIMEOUT, float),
        "DISPLAY_WIDTH": DISPLAY_WIDTH,
    }


def check_endpoint_timeout(value, name: str = ENDPOINT_TIMEOUT_ENV) -> float:
    """``value`` as seconds if it is a finite number in (0, :data:`MAX_ENDPOINT_TIMEOUT`], else a ValueError naming
    ``name`` (the timeout is no secret: its value is shown too)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
        if math.isfinite(seconds) and 0 < seconds <= MAX_ENDPOINT_TIMEOUT:
            return seconds
    raise ValueError(f"{name} must be a number of seconds greater than 0 and at most {MAX_ENDPOINT_TIMEOUT:g}, "
                     f"got {value!r}")


def _check_endpoint_url(url: str) -> None:
    """Refuse an endpoint URL that every request would fail on, naming the setting but not its value (a URL may
    carry a password or a key in its query string)."""
    problem = None
    parts = urllib.parse.urlsplit(url)
    if not url.isprintable():
        problem = "contains a line break or another control character"
    elif parts.scheme not in ("http", "https"):
        problem = "must start with https:// (or http:// for a server on this machine)"
    elif "@" in parts.netloc:  # urllib would look the whole "user:password@host" up as a host name
        problem = ("carries user info (name:password@ before the host, not shown), which the endpoint does not "
                   f"take: remove it and put the endpoint's key in {ENDPOINT_KEY_ENV}")
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
    """Strip and check ``ENDPOINT_URL`` and ``ENDPOINT_KEY`` in place (an empty one is None), and check
    ``ENDPOINT_TIMEOUT`` (:func:`check_endpoint_timeout`) whether or not an endpoint is set."""
    for name in ("ENDPOINT_URL", "ENDPOINT_KEY"):
        if settings[name] is not None:
            settings[name] = str(settings[name]).strip() or None
    if settings["ENDPOINT_URL"]:
        _check_endpoint_url(settings["ENDPOINT_URL"])
    if settings["ENDPOINT_KEY"]:
        _check_endpoint_key(settings["ENDPOINT_KEY"])
    settings["ENDPOINT_TIMEOUT"] = check_endpoint_timeout(settings["ENDPOINT_TIMEOUT"],
                                                          f"{ENDPOINT_TIMEOUT_ENV} (ENDPOINT_TIMEOUT)")

