"""The Azure ML endpoint client of App Service mode: :func:`endpoint_predict` POSTs image bytes with the key from
``SEGLIB_ENDPOINT_KEY`` and decodes the answer; every failure is an :class:`EndpointError` whose message names the
endpoint's address but never its key, nor a password or query string of its URL (:func:`_scrub`)."""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from seglib import predict
from seglib.webapp.settings import ENDPOINT_KEY_ENV, ENDPOINT_URL_ENV

__all__ = ["EndpointError", "endpoint_predict"]


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
