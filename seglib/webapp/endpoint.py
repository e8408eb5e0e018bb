"""The Azure ML endpoint client of App Service mode: :func:`endpoint_predict` POSTs image bytes with the key from
``SEGLIB_ENDPOINT_KEY`` and decodes the answer; every failure is an :class:`EndpointError` whose message names the
endpoint's address but never its key, nor a password or query string of its URL, in any form (:func:`_scrub`).

The endpoint is trusted with the image, not with this server's memory or time: its answer is read up to a byte
limit (:func:`answer_limit`, from the pixels of the image sent), its mask PNG's header is checked against the
image's pixels before a pixel is decoded, ``SEGLIB_ENDPOINT_TIMEOUT`` bounds the whole exchange (an answer trickled a
byte at a time included: :class:`_Watchdog`), and no redirect is followed (it would carry the key elsewhere)."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import http.client
import io
import json
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings

import numpy as np
from PIL import Image

from seglib import predict
from seglib.webapp.settings import ENDPOINT_KEY_ENV, ENDPOINT_URL_ENV, check_endpoint_timeout

__all__ = ["EndpointError", "endpoint_predict", "answer_limit", "SCRUB_MIN_CHARS"]

#: Shortest piece of a secret that is scrubbed: any run of at least this many characters of the key (or of one of
#: its encoded forms) is replaced, so an echo cut short by the endpoint shows at most 7 characters of it.
SCRUB_MIN_CHARS = 8
#: Bytes of an endpoint's error answer read for its message (of which 300 characters are shown).
ERROR_BYTES = 64 * 1024
#: Room for the JSON around a legal answer's mask PNG: height, width, category names and shares (under 1 KiB),
#: and the escaped quotes of an answer encoded twice.
JSON_OVERHEAD = 64 * 1024


class EndpointError(RuntimeError):
    """The prediction endpoint failed; ``status`` is what the web app answers (the endpoint's own 4xx, else 502
    or 504), with the endpoint's ``Retry-After`` if it sent one with that 4xx. Messages name the endpoint's address
    but never its key."""

    def __init__(self, message: str, status: int = 502, retry_after: str | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def answer_limit(pixels: int) -> int:
    """The largest answer a legal prediction for an image of ``pixels`` pixels can be, in bytes.

    The rule: the mask PNG (:func:`seglib.predict.mask_png`) holds one byte a pixel and one filter byte a row (at
    most :data:`~seglib.predict.MAX_SIDE` rows); deflate's worst case (stored blocks) and the IDAT chunks add less
    than 1/1024 of that, and the signature, IHDR, PLTE, tRNS and IEND chunks fit in 64 KiB. Base64 makes it 4/3 as
    long, and :data:`JSON_OVERHEAD` covers the rest. For the app's default 2-frame image (4,194,304 pixels) this is
    about 5.7 MB; an answer with ``overlay_png`` (never asked for by this client) does not fit.
    """
    raw = pixels + min(pixels, predict.MAX_SIDE)
    png = raw + raw // 1024 + 64 * 1024
    return 4 * -(-png // 3) + JSON_OVERHEAD


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect would carry the Authorization header to another address


class _Watchdog:
    """Ends a request at its deadline by shutting its connection's socket down, which ends a connect, send or read
    in progress. A socket timeout alone bounds each read, not an endpoint that trickles its answer a byte at a time."""

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()

    def connection_class(self, http_class):
        """``http_class`` as urllib's handlers call it, with each connection it makes watched."""

        def make(*args, **kwargs):
            connection = http_class(*args, **kwargs)
            connect = connection.connect

            def watched_connect():
                connect()
                with self._lock:  # the socket itself: urllib drops connection.sock once the headers are read
                    self._sockets.append(connection.sock)
                    if self.expired:  # the deadline passed while connecting
                        raise TimeoutError("the deadline passed")

            connection.connect = watched_connect
            return connection

        return make

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _WatchedHTTP(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog):
        super().__init__()
        self._watchdog = watchdog

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(self._watchdog.connection_class(http_class), req, **kwargs)


class _WatchedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog):
        super().__init__()
        self._watchdog = watchdog

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(self._watchdog.connection_class(http_class), req, **kwargs)


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
    except (ValueError, RecursionError):
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
    if 300 <= status < 400:  # not followed: the key would go with it; its Location is not shown
        return EndpointError(f"the prediction endpoint {address} redirects elsewhere ({status}), which this server "
                             f"does not follow with its key: set {ENDPOINT_URL_ENV} to the scoring URL itself", 502)
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


def _sent_pixels(data: bytes) -> int | None:
    """The pixels of the image sent, from its header (None if Pillow cannot read one)."""
    with contextlib.suppress(Exception):  # not an image: the caller's bound applies instead
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                return width * height
    return None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def _json_type(value) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _decode_mask(text, max_pixels: int) -> np.ndarray:
    """An answer's ``mask_png`` -> category ids. Its size is read from the PNG's IHDR chunk here, before Pillow
    sees the file (whose ``Image.open`` itself raises on a declared decompression bomb): more than ``max_pixels``
    pixels or a side over :data:`~seglib.predict.MAX_SIDE` is refused undecoded."""
    if not isinstance(text, str):
        raise TypeError(f"mask_png is a JSON {_json_type(text)}, not a base64 string")
    data = base64.b64decode(text)
    if len(data) < 24 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("mask_png is not a PNG image")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if width * height > max_pixels or max(width, height) > predict.MAX_SIDE:
        raise ValueError(f"its mask is {width}x{height} = {width * height:,} pixels, more than the {max_pixels:,} "
                         f"of the image sent (or a side over {predict.MAX_SIDE})")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return predict.decode_mask_png(data)


def _decode_answer(body: bytes, address: str, max_pixels: int) -> np.ndarray:
    try:
        answer = json.loads(body)
        if isinstance(answer, str):  # a run() that returns json.dumps(...) is encoded twice by the server
            answer = json.loads(answer)
        if not isinstance(answer, dict):
            raise TypeError(f"the answer is a JSON {_json_type(answer)}, not an object")
        height, width = answer.get("height"), answer.get("width")
        if type(height) is not int or type(width) is not int:
            raise TypeError(f"height and width are a JSON {_json_type(height)} and {_json_type(width)}, "
                            "not integers")
        categories = _decode_mask(answer.get("mask_png"), max_pixels)
        if categories.shape != (height, width):
            raise ValueError(f"mask {categories.shape} but height/width {height}x{width}")
    # untrusted bytes: any failure to read them (RecursionError of deep JSON, Pillow's SyntaxError, struct.error or
    # DecompressionBombError/Warning of a crafted PNG) is the endpoint's, not this server's
    except Exception as error:  # noqa: BLE001
        detail = str(error)[:200] or type(error).__name__
        raise EndpointError(f"the prediction endpoint {address} answered something that is not a prediction: "
                            f"{detail}", 502) from None
    return categories


def _secret_forms(secret: str) -> set[str]:
    """Every form in which a misbehaving endpoint may echo ``secret``:

    * itself, and escaped as ``repr`` shows it in a str or in bytes (how http.client's "Invalid header value
      b'Bearer ...\\r'" shows a key that ends in a line break);
    * URL-encoded (``quote`` with and without ``/`` kept, ``quote_plus``), JSON-escaped (also with ``\\/``), hex;
    * base64 and URL-safe base64, at each of the three alignments it can have inside a longer base64 text (so
      base64 of ``Bearer <key>`` or of a whole header is covered): only the characters that depend on the secret
      alone. :func:`_scrub` compares without case, so ``%2f`` is ``%2F``.
    """
    raw = secret.encode("utf-8", errors="replace")
    forms = {secret, repr(secret)[1:-1], repr(raw)[2:-1], raw.hex(),
             urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret), urllib.parse.quote_plus(secret),
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
             json.dumps(secret)[1:-1].replace("/", "\\/")}
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + raw).decode("ascii")
        core = encoded[-(-8 * shift // 6): 8 * (shift + len(raw)) // 6]
        forms |= {core, core.replace("+", "-").replace("/", "_")}
    return forms - {""}


def _fold(text: str) -> str:
    """``text`` in lower case, character for character (a character whose lower case is longer is kept)."""
    lower = text.lower()
    if len(lower) == len(text):
        return lower
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _scrub(message: str, url: str, key: str | None) -> str:
    """``message`` without the key, nor a password or query string that the URL may carry, in any form of
    :func:`_secret_forms`: every run of :data:`SCRUB_MIN_CHARS` or more characters that is a piece of one of those
    forms (case aside) becomes ``***``, so a truncated echo goes too; a form shorter than that goes whole."""
    parts = urllib.parse.urlsplit(url)
    secrets = [secret for secret in (key, parts.password, parts.query) if secret]
    if not secrets or not message:
        return message
    forms = {_fold(form) for secret in secrets for form in _secret_forms(secret)}
    size = SCRUB_MIN_CHARS
    pieces = {form[i:i + size] for form in forms for i in range(len(form) - size + 1)}
    folded = _fold(message)
    hidden = bytearray(len(message))
    for form in (form for form in forms if len(form) < size):
        for found in re.finditer(re.escape(form), folded):
            hidden[found.start():found.end()] = b"\1" * len(form)
    for start in range(len(message) - size + 1):
        if folded[start:start + size] in pieces:
            hidden[start:start + size] = b"\1" * size
    if not any(hidden):
        return message
    kept = [char if not hidden[i] else None for i, char in enumerate(message)]
    return "".join(char if char is not None else ("" if i and kept[i - 1] is None else "***")
                   for i, char in enumerate(kept))


def _read_at_most(stream, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``stream``, one receive at a time (so the watchdog's deadline holds)."""
    read = getattr(stream, "read1", None) or stream.read
    chunks, size = [], 0
    while size <= limit:
        chunk = read(min(1 << 16, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _declared_length(headers) -> int | None:
    text = (headers.get("Content-Length") or "").strip()
    return int(text) if text.isdigit() else None


def _too_large(address: str, limit: int) -> EndpointError:
    return EndpointError(f"the prediction endpoint {address} answered more than the {limit:,} bytes a prediction "
                         "for this image can take", 502)


def _exchange(opener, request, address: str, url: str, key: str | None, limit: int, watchdog: _Watchdog) -> bytes:
    try:
        with opener.open(request, timeout=request.timeout) as response:
            declared = _declared_length(response.headers)
            if declared is not None and declared > limit:
                raise _too_large(address, limit)
            body = _read_at_most(response, limit)
    except urllib.error.HTTPError as error:
        with error:
            message = _endpoint_message(_read_at_most(error.fp or io.BytesIO(), ERROR_BYTES), url, key)
        if watchdog.expired:
            raise TimeoutError from None
        raise _http_failure(address, error.code, message, _retry_after(error.headers.get("Retry-After"))) from None
    if watchdog.expired:
        raise TimeoutError
    if len(body) > limit:
        raise _too_large(address, limit)
    if declared is not None and len(body) < declared:
        raise EndpointError(f"the prediction endpoint {address} closed the connection after {len(body):,} of the "
                            f"{declared:,} bytes it announced", 502)
    return body


def _post(url: str, data: bytes, headers: dict[str, str], address: str, key: str | None, timeout: float,
          limit: int) -> bytes:
    late = EndpointError(f"the prediction endpoint {address} did not answer within {timeout:g} s", 504)
    with _Watchdog(timeout) as watchdog:
        try:
            request = urllib.request.Request(url, data=bytes(data), headers=headers, method="POST")
            request.timeout = timeout
            opener = urllib.request.build_opener(_NoRedirect, _WatchedHTTP(watchdog), _WatchedHTTPS(watchdog))
            return _exchange(opener, request, address, url, key, limit, watchdog)
        except EndpointError:
            raise
        except urllib.error.URLError as error:
            if watchdog.expired or isinstance(error.reason, TimeoutError):
                raise late from None
            raise EndpointError(f"the prediction endpoint {address} is unreachable: {error.reason}", 502) from None
        except TimeoutError:
            raise late from None
        except (OSError, http.client.HTTPException) as error:  # reset connections, malformed HTTP answers
            if watchdog.expired:
                raise late from None
            raise EndpointError(f"the prediction endpoint {address} broke the connection or HTTP "
                                f"({type(error).__name__}: {str(error)[:200]})", 502) from None
        except ValueError as error:  # a URL or header urllib cannot send; its text may quote the key: not shown
            raise EndpointError(f"the request to the prediction endpoint {address} cannot be sent "
                                f"({type(error).__name__}): check {ENDPOINT_URL_ENV} and {ENDPOINT_KEY_ENV} for "
                                "stray characters", 502) from None


def endpoint_predict(url: str, key: str | None, data: bytes, timeout: float = 60.0, *,
                     max_pixels: int | None = None) -> np.ndarray:
    """POST image bytes to an Azure ML endpoint running ``score.py`` -> ``(H, W) uint8`` category ids.

    Sends ``Content-Type: application/octet-stream`` and ``Authorization: Bearer <key>`` (no header when ``key`` is
    empty, as for a local ``azmlinfsrv``); the answer is :meth:`~seglib.predict.Prediction.as_json`. ``timeout``
    (seconds, finite, at most :data:`~seglib.webapp.settings.MAX_ENDPOINT_TIMEOUT`, else ValueError) bounds the
    whole exchange. The mask may have at most as many pixels as the image sent (read from its header), nor more
    than ``max_pixels`` if given; bytes without a readable header are bounded by ``max_pixels`` or else
    :data:`seglib.predict.MAX_PIXELS`. The answer may have at most :func:`answer_limit` of that many bytes.
    Failures raise :class:`EndpointError`: the endpoint's 4xx verdict on the image keeps its status and message; a
    refused key or wrong URL, a redirect, a 5xx, an unreachable host or a bad or oversized answer is 502; a timeout
    is 504. No message holds the key in any form :func:`_scrub` knows.
    """
    timeout = check_endpoint_timeout(timeout, "timeout")
    address = _public_address(url)
    bound = _sent_pixels(data) or max_pixels or predict.MAX_PIXELS
    if max_pixels:
        bound = min(bound, max_pixels)
    headers = {"Content-Type": "application/octet-stream"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        body = _post(url, data, headers, address, key, timeout, answer_limit(bound))
        return _decode_answer(body, address, bound)
    except EndpointError as error:
        retry_after = error.retry_after
        if retry_after is not None and _scrub(retry_after, url, key) != retry_after:
            retry_after = None
        raise EndpointError(_scrub(str(error), url, key), error.status, retry_after) from None
