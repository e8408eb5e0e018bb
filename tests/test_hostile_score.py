"""Hostile inputs against deploy/azureml/score.py: every malformed request gets a JSON 4xx, never a 500, and the
next good request gets the same answer as before.

One table of cases (``CASES``) runs in-process, through the inference server's own Flask app (which calls
score.py's ``init()`` once and ``run()`` per request, and turns anything ``run()`` raises into a 500), and a subset
(``HTTP_CASES``, plus the cases only raw HTTP can send: a declared length with no body, chunked bodies) runs over
HTTP against a real ``azmlinfsrv`` on loopback, started once for this module. The layout, the uploads, the
reference predictor and the server launcher are those of tests/test_azureml.py. The servers here run with a small
``SEGLIB_MAX_UPLOAD_BYTES`` (``LIMIT``) so that oversized bodies stay cheap; one test sends the 40 MiB body of the
original report against the default limit. A property-based fuzz (hypothesis) mutates valid PNG/JPEG bytes and
posts them, base64 in JSON or raw: never a 500, always a JSON answer, within seconds.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import http.client
import json
import socket
import struct
import sys
import time
import zlib

import numpy as np
import pytest
from _images import png_claiming
from hypothesis import given, settings
from hypothesis import strategies as st

import test_azureml as azureml
from test_azureml import layout, reference, uploads  # noqa: F401 - fixtures shared with test_azureml.py

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

LIMIT = 200_000  # SEGLIB_MAX_UPLOAD_BYTES for the servers here
UPLOAD_ENV = "SEGLIB_MAX_UPLOAD_BYTES"
CLIENT_ERRORS = {400, 405, 413, 415}
SECONDS_PER_REQUEST = 5.0


# ---------------------------------------------------------------------------------------------------------
# Hostile bodies
# ---------------------------------------------------------------------------------------------------------

def deflate_bomb(side: int = 2500) -> bytes:
    """A real, complete ``side x side`` black PNG: a few KiB that decode to ``3 * side**2`` bytes."""
    return png_claiming(side, side, zlib.compress(bytes(side * (1 + 3 * side)), 9))


def jpeg_declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its baseline frame header (SOF0) rewritten to declare ``width x height``."""
    at = jpeg.index(b"\xff\xc0")
    return jpeg[:at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9:]


def padded(png: bytes, size: int) -> bytes:
    """A valid PNG followed by zeros up to ``size`` bytes: decoders stop at IEND, so only a size limit refuses it."""
    return png + bytes(size - len(png))


def as_json(data: bytes, **extra) -> bytes:
    return json.dumps({"image": base64.b64encode(data).decode("ascii"), **extra}).encode()


def raw_json(image_value: str) -> bytes:
    return b'{"image": ' + image_value.encode() + b"}"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def utf16_json(data: bytes) -> bytes:
    return as_json(data).decode().encode("utf-16")


PNG, JPEG, JSON, RAW = "image/png", "image/jpeg", "application/json", "application/octet-stream"

# (id, method, body from the uploads, content type, status, words the message holds or None). A status 200 case is
# a good request in an odd form; its last column names the upload whose reference mask the answer must hold.
CASES = [
    # image bombs: pixels declared in a few bytes, refused before any pixel is decoded
    ("png declares 100000x100000", "POST", lambda u: png_claiming(100_000, 100_000), PNG, 413, "too many pixels"),
    ("png declares 300x300", "POST", lambda u: png_claiming(300, 300), PNG, 413, "90,000 pixels"),
    ("png declares a 9000x1 strip", "POST", lambda u: png_claiming(9000, 1), PNG, 413, "sides longer"),
    ("png deflate bomb 2500x2500", "POST", lambda u: deflate_bomb(), PNG, 413, "6,250,000 pixels"),
    ("jpeg declares 65000x65000", "POST", lambda u: jpeg_declaring(u["jpeg"], 65000, 65000), JPEG, 413,
     "too many pixels"),
    ("jpeg declares 300x300", "POST", lambda u: jpeg_declaring(u["jpeg"], 300, 300), JPEG, 413, "90,000 pixels"),
    ("bomb as base64 JSON", "POST", lambda u: as_json(png_claiming(100_000, 100_000)), JSON, 413, "too many"),
    # truncated and broken files
    ("truncated png", "POST", lambda u: u["png"][: len(u["png"]) // 2], PNG, 400, "truncated"),
    ("truncated jpeg", "POST", lambda u: u["jpeg"][: len(u["jpeg"]) // 2], JPEG, 400, "truncated"),
    ("png signature only", "POST", lambda u: u["png"][:8], PNG, 400, "not an image"),
    ("png header only", "POST", lambda u: u["png"][:33], PNG, 400, "not an image"),
    ("jpeg start marker only", "POST", lambda u: u["jpeg"][:3], JPEG, 400, "not an image"),
    ("truncated png as base64 JSON", "POST", lambda u: as_json(u["png"][:-200]), JSON, 400, "truncated"),
    # lying content types
    ("png sent as JSON", "POST", lambda u: u["png"], JSON, 400, "not valid JSON"),
    ("png sent as text/json", "POST", lambda u: u["png"], "text/json", 400, "not valid JSON"),
    ("JSON sent as image/png", "POST", lambda u: as_json(u["png"]), PNG, 400, "not an image"),
    ("gif sent as image/png", "POST", lambda u: u["gif"], PNG, 415, "GIF"),
    ("jpeg sent as image/png", "POST", lambda u: u["jpeg"], PNG, 200, "jpeg"),
    ("png sent as text/plain", "POST", lambda u: u["png"], "text/plain", 200, "png"),
    ("png sent as multipart", "POST", lambda u: u["png"], "multipart/form-data; boundary=x", 200, "png"),
    ("JSON with charset, upper case", "POST", lambda u: as_json(u["png"]), "Application/JSON; charset=UTF-8", 200,
     "png"),
    ("JSON in UTF-16", "POST", lambda u: utf16_json(u["png"]), JSON, 200, "png"),
    # malformed JSON
    ("deeply nested array", "POST", lambda u: nested(100_000), JSON, 400, "nested too deeply"),
    ("deeply nested image value", "POST", lambda u: raw_json(nested(50_000).decode()), JSON, 400,
     "nested too deeply"),
    ("5000-digit integer image", "POST", lambda u: raw_json("1" * 5000), JSON, 400, '"image"'),
    ("5000-digit negative integer", "POST", lambda u: raw_json("-" + "9" * 5000), JSON, 400, '"image"'),
    ("5000-digit float", "POST", lambda u: raw_json("1" * 5000 + ".5e3"), JSON, 400, '"image"'),
    ("5000-digit integer beside a good image", "POST", lambda u: as_json(u["png"])[:-1] + b', "id": '
     + b"7" * 5000 + b"}", JSON, 200, "png"),
    ("NaN image", "POST", lambda u: raw_json("NaN"), JSON, 400, '"image"'),
    ("image is a number", "POST", lambda u: raw_json("5"), JSON, 400, '"image"'),
    ("image is null", "POST", lambda u: raw_json("null"), JSON, 400, '"image"'),
    ("image is true", "POST", lambda u: raw_json("true"), JSON, 400, '"image"'),
    ("image is a list", "POST", lambda u: raw_json('["iVBORw0KGgo="]'), JSON, 400, '"image"'),
    ("image is an object", "POST", lambda u: raw_json('{"base64": "iVBORw0KGgo="}'), JSON, 400, '"image"'),
    ("JSON array", "POST", lambda u: b"[]", JSON, 400, '"image"'),
    ("JSON null", "POST", lambda u: b"null", JSON, 400, '"image"'),
    ("JSON string", "POST", lambda u: b'"iVBORw0KGgo="', JSON, 400, '"image"'),
    ("JSON number", "POST", lambda u: b"12", JSON, 400, '"image"'),
    ("empty JSON body", "POST", lambda u: b"", JSON, 400, "empty"),
    ("whitespace JSON body", "POST", lambda u: b" \r\n\t ", JSON, 400, "empty"),
    ("invalid UTF-8", "POST", lambda u: b'{"image": "\xff\xfe"}', JSON, 400, "not valid JSON"),
    ("unterminated JSON", "POST", lambda u: b'{"image": "abc', JSON, 400, "not valid JSON"),
    ("not base64", "POST", lambda u: raw_json('"not base64!"'), JSON, 400, "not valid base64"),
    ("non-ASCII base64", "POST", lambda u: raw_json('"iVBOR\u00e9\u20ac"'), JSON, 400, "not valid base64"),
    ("base64 with bad padding", "POST", lambda u: raw_json('"abc"'), JSON, 400, "not valid base64"),
    ("base64 of nothing", "POST", lambda u: raw_json('""'), JSON, 400, "empty"),
    ("base64 of text", "POST", lambda u: as_json(u["text"]), JSON, 400, "not an image"),
    # sizes: the image file may hold LIMIT bytes, sent raw or as base64 (line-wrapped too)
    ("raw body at the limit", "POST", lambda u: padded(u["png"], LIMIT), PNG, 200, "png"),
    ("raw body over the limit", "POST", lambda u: padded(u["png"], LIMIT + 1), PNG, 413, f"{LIMIT:,}"),
    ("raw body 4x the limit", "POST", lambda u: padded(u["png"], 4 * LIMIT), RAW, 413, f"{LIMIT:,}"),
    ("line-wrapped base64 at the limit", "POST", lambda u: json.dumps(
        {"image": base64.encodebytes(padded(u["png"], LIMIT)).decode()}).encode(), JSON, 200, "png"),
    ("base64 of one byte over the limit", "POST", lambda u: as_json(padded(u["png"], LIMIT + 1)), JSON, 413,
     f"{LIMIT:,}"),
    ("base64 text over the limit", "POST", lambda u: as_json(padded(u["png"], LIMIT + 300)), JSON, 413,
     f"{LIMIT:,}"),
    ("JSON body 2x the limit", "POST", lambda u: as_json(u["png"])[:-1] + b" " * (2 * LIMIT) + b"}", JSON, 413,
     "body"),
    # methods other than POST
    ("GET", "GET", lambda u: b"", None, 405, "POST an image"),
    ("HEAD", "HEAD", lambda u: b"", None, 405, None),
    ("OPTIONS", "OPTIONS", lambda u: b"", None, 405, "POST an image"),
    ("PUT", "PUT", lambda u: u["png"], PNG, 405, "not allowed"),
    ("DELETE", "DELETE", lambda u: b"", None, 405, "not allowed"),
    ("PATCH", "PATCH", lambda u: as_json(u["png"]), JSON, 405, "not allowed"),
    ("TRACE", "TRACE", lambda u: b"", None, 405, "not allowed"),
]
CASE = {case[0]: case for case in CASES}
assert len(CASE) == len(CASES)

#: The cases also sent to the real server over HTTP.
HTTP_CASES = ["png declares 100000x100000", "png deflate bomb 2500x2500", "truncated jpeg", "png sent as JSON",
              "jpeg sent as image/png", "deeply nested array", "5000-digit integer image",
              "5000-digit integer beside a good image", "image is a list", "JSON null", "not base64",
              "raw body over the limit", "raw body 4x the limit", "base64 text over the limit",
              "JSON body 2x the limit", "line-wrapped base64 at the limit", "GET", "OPTIONS", "PUT", "DELETE"]
assert set(HTTP_CASES) <= set(CASE)


def _message(answer: dict) -> str:
    """score.py answers ``{"error": ...}``; the inference server itself ``{"message": ...}``."""
    return answer.get("error") or answer.get("message") or ""


# ---------------------------------------------------------------------------------------------------------
# The in-process server and its good answer
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(layout):  # noqa: F811 - the layout fixture of test_azureml.py
    """The Flask app azmlinfsrv serves, built in this process as test_azureml.py builds it, with LIMIT."""
    saved_print, saved_path = builtins.print, list(sys.path)
    saved_logging = azureml._logging_state()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AML_APP_ROOT", str(layout["app_root"]))
        patch.setenv("AZUREML_ENTRY_SCRIPT", f"{azureml.REPO.name}/{azureml.SCORE.as_posix()}")
        patch.setenv("AZUREML_MODEL_DIR", str(layout["model_dir"]))
        patch.setenv("SEGLIB_MAX_PIXELS", str(azureml.MAX_PIXELS))
        patch.setenv(UPLOAD_ENV, str(LIMIT))
        azureml._purge_server_modules()
        try:
            from azureml_inference_server_http.server.entry import app

            yield app.test_client()
        finally:
            builtins.print, sys.path[:] = saved_print, saved_path
            azureml._restore_logging(saved_logging)
            azureml._purge_server_modules()


@pytest.fixture(scope="module")
def good(client, uploads, reference):  # noqa: F811
    """The answer to a good upload before any hostile request: later good answers must equal it."""
    answer = client.post("/score", data=uploads["png"], content_type=PNG)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    np.testing.assert_array_equal(azureml._mask(body), reference.predict_bytes(uploads["png"]).categories)
    return body


def _check_answer(status: int, content_type: str | None, data: bytes, expected: int, words: str | None,
                  method: str = "POST") -> dict | None:
    assert status == expected, data[:500]
    if method == "HEAD":
        return None
    assert (content_type or "").startswith("application/json"), (content_type, data[:200])
    answer = json.loads(data)
    if status != 200 and words is not None:
        assert words in _message(answer), answer
    return answer


def _check_good_answer(answer: dict, upload: str, uploads, reference) -> None:  # noqa: F811
    expected = reference.predict_bytes(uploads[upload]).categories
    np.testing.assert_array_equal(azureml._mask(answer), expected)


@pytest.mark.parametrize("name, method, body, content_type, status, words", CASES, ids=[case[0] for case in CASES])
def test_hostile_request_in_process(client, good, uploads, reference, name, method, body, content_type, status,
                                    words):
    data = body(uploads)
    start = time.monotonic()
    answer = client.open("/score", method=method, data=data, content_type=content_type)
    assert time.monotonic() - start < SECONDS_PER_REQUEST
    parsed = _check_answer(answer.status_code, answer.headers.get("Content-Type"), answer.get_data(), status, words,
                           method)
    if status == 200:
        _check_good_answer(parsed, words, uploads, reference)
    if status == 405 and method in ("GET", "OPTIONS", "HEAD"):  # score.py's own 405 names what is allowed
        assert answer.headers.get("Allow") == "POST"
    after = client.post("/score", data=uploads["png"], content_type=PNG)
    assert after.status_code == 200 and after.get_json() == good


def test_bodies_over_the_limit_are_refused_before_they_are_decoded(client, good, uploads, monkeypatch):
    """A body over the limit is refused on its length: the JSON is not parsed, the base64 not decoded."""
    calls = []

    def spy(function):
        def wrapped(*args, **kwargs):
            calls.append(function.__name__)
            return function(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(base64, "b64decode", spy(base64.b64decode))
    monkeypatch.setattr(json, "loads", spy(json.loads))
    for body, content_type in ((as_json(padded(uploads["png"], 2 * LIMIT)), JSON),  # the body length
                               (as_json(padded(uploads["png"], LIMIT + 300)), JSON),  # the base64 text length
                               (padded(uploads["png"], LIMIT + 1), PNG)):
        answer = client.post("/score", data=body, content_type=content_type)
        assert answer.status_code == 413, answer.get_data(as_text=True)
        assert "b64decode" not in calls
    assert calls.count("loads") <= 1  # only the base64 text length case parses its (small enough) body
    monkeypatch.undo()
    assert client.post("/score", data=uploads["png"], content_type=PNG).get_json() == good


def test_a_40_mib_base64_body_is_refused_by_the_default_limit_unparsed(monkeypatch):
    """The report's case: 40 MiB of base64 against the default limit, with score.py's run() called directly on a
    werkzeug request: 413 on its declared length, the body drained but never kept, parsed or decoded (the model is
    not even needed)."""
    from werkzeug.test import EnvironBuilder

    score = azureml._load_score()
    monkeypatch.delenv(UPLOAD_ENV, raising=False)
    body = b'{"image": "' + b"A" * (40 * 2**20) + b'"}'
    request = EnvironBuilder(path="/score", method="POST", data=body, content_type=JSON).get_request()
    monkeypatch.setattr(base64, "b64decode", lambda *args, **kwargs: pytest.fail("base64 decoded"))
    monkeypatch.setattr(json, "loads", lambda *args, **kwargs: pytest.fail("JSON parsed"))
    answer = score.run(request)
    monkeypatch.undo()
    assert answer.status_code == 413 and "16,777,216" in answer.get_json()["error"]


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "16MiB", "abc", "\u0663", "1" * 5000])
def test_init_refuses_a_bad_upload_limit_naming_the_variable(layout, monkeypatch, value):  # noqa: F811
    score = azureml._load_score()
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(layout["model_dir"]))
    monkeypatch.setenv(UPLOAD_ENV, value)
    with pytest.raises(ValueError, match=UPLOAD_ENV):
        score.init()
    assert score.predictor is None  # refused before the model is loaded


def test_upload_limit_setting(monkeypatch):
    score = azureml._load_score()
    monkeypatch.setenv(UPLOAD_ENV, "1234")
    assert score.max_upload_bytes() == 1234
    for blank in (" ", ""):
        monkeypatch.setenv(UPLOAD_ENV, blank)
        assert score.max_upload_bytes() == score.MAX_UPLOAD_BYTES == 16 * 2**20
    assert score.MAX_UPLOAD_ENV == UPLOAD_ENV and UPLOAD_ENV in score.__doc__


# ---------------------------------------------------------------------------------------------------------
# Fuzz: mutated PNG/JPEG uploads
# ---------------------------------------------------------------------------------------------------------

_position = st.integers(min_value=0, max_value=2**20)
MUTATIONS = st.one_of(st.tuples(st.just("flip"), _position, st.integers(0, 7)),
                      st.tuples(st.just("truncate"), _position),
                      st.tuples(st.just("insert"), _position, st.binary(min_size=1, max_size=16)))


def mutate(data: bytes, mutations) -> bytes:
    data = bytearray(data)
    for kind, position, *rest in mutations:
        at = position % max(len(data), 1)
        if kind == "flip" and data:
            data[at] ^= 1 << rest[0]
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = rest[0]
    return bytes(data)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(base=st.sampled_from(["png", "jpeg"]), mutations=st.lists(MUTATIONS, min_size=1, max_size=4),
       wrap=st.sampled_from(["json", "json", "raw"]))
def test_fuzzed_uploads_never_get_a_500(client, good, uploads, base, mutations, wrap):
    data = mutate(uploads[base], mutations)
    body, content_type = (as_json(data), JSON) if wrap == "json" else (data, RAW)
    start = time.monotonic()
    answer = client.post("/score", data=body, content_type=content_type)
    assert time.monotonic() - start < SECONDS_PER_REQUEST
    assert answer.status_code in {200} | CLIENT_ERRORS, answer.get_data(as_text=True)[:500]
    assert answer.headers["Content-Type"].startswith("application/json")
    parsed = json.loads(answer.get_data())
    assert ("mask_png" in parsed) if answer.status_code == 200 else _message(parsed)


def test_the_server_still_answers_the_same_after_the_fuzz(client, good, uploads):
    assert client.post("/score", data=uploads["png"], content_type=PNG).get_json() == good


# ---------------------------------------------------------------------------------------------------------
# Over HTTP: a real azmlinfsrv on loopback
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(layout, tmp_path_factory):  # noqa: F811
    log = tmp_path_factory.mktemp("azmlinfsrv-hostile") / "server.log"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(UPLOAD_ENV, str(LIMIT))  # azmlinfsrv() passes this process's environment on
        with azureml.azmlinfsrv(layout, log) as (url, port):
            yield {"url": url, "port": port, "log": log}


def _exchange(port: int, head: bytes, body: bytes = b"", timeout: float = 30.0, method: str = "POST"):
    """Send ``head`` and ``body`` on a new connection -> ``(status, content type, body)`` of the answer. The
    connection is shut down however this ends (the response's file would keep it open), so that a request the
    server still waits on cannot block its one worker for the tests after."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    response = None
    try:
        connection.sendall(head + body)
        response = http.client.HTTPResponse(connection, method=method)
        response.begin()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        if response is not None:
            response.close()
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
        connection.close()


def _head(method: str, length: int | None, content_type: str | None, chunked: bool = False) -> bytes:
    lines = [f"{method} /score HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunked(data: bytes, size: int = 8192) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(data[at:at + size]), data[at:at + size]) for at in range(0, len(data), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def _good_after(server, uploads, good):  # noqa: F811
    status, content_type, data = _exchange(server["port"], _head("POST", len(uploads["png"]), PNG), uploads["png"])
    assert status == 200 and json.loads(data) == good


@pytest.mark.parametrize("name", HTTP_CASES)
def test_hostile_request_over_http(server, good, uploads, reference, name):  # noqa: F811
    _, method, body, content_type, status, words = CASE[name]
    data = body(uploads)
    start = time.monotonic()
    got = _exchange(server["port"], _head(method, len(data), content_type), data, method=method)
    assert time.monotonic() - start < SECONDS_PER_REQUEST
    parsed = _check_answer(*got, status, words, method)
    if status == 200:
        _check_good_answer(parsed, words, uploads, reference)
    _good_after(server, uploads, good)


def test_a_declared_length_over_the_limit_is_answered_without_reading_the_body(server, good, uploads):
    """1 GiB declared, nothing sent: the 413 comes at once (today's server waits for the body)."""
    status, content_type, data = _exchange(server["port"], _head("POST", 2**30, RAW), timeout=10)
    _check_answer(status, content_type, data, 413, f"{LIMIT:,}")
    _good_after(server, uploads, good)


@pytest.mark.parametrize("case, status, words", [("good", 200, None), ("over the limit", 413, f"{LIMIT:,}"),
                                                ("bad chunk size", 400, "could not be read")])
def test_chunked_bodies(server, good, uploads, case, status, words):
    """Without a Content-Length the limit is counted while reading; a broken chunked encoding is a 400."""
    if case == "good":
        body = _chunked(uploads["png"])
    elif case == "over the limit":
        body = _chunked(padded(uploads["png"], 3 * LIMIT))
    else:
        body = b"5\r\nhello\r\nzz\r\n" + b"x" * 40 + b"\r\n0\r\n\r\n"  # "zz" is no chunk size
    got = _exchange(server["port"], _head("POST", None, PNG, chunked=True), body, timeout=20)
    answer = _check_answer(*got, status, words)
    if status == 200:
        assert answer == good
    _good_after(server, uploads, good)


def test_the_server_log_shows_no_unhandled_exception(server, uploads, good):
    _good_after(server, uploads, good)
    log = server["log"].read_text()
    assert "Encountered Exception" not in log and " 500 " not in log, log[-3000:]
