"""The web app's Azure ML endpoint client (seglib.webapp.endpoint) and its settings, against a hostile endpoint.

A fake endpoint on loopback answers ``/score`` as ``score.py`` would (a mask computed from the image it gets, so
no model is needed), except for the one request that a test *arms* with a hostile answer: a huge body, a mask
declaring too many pixels or that is not a PNG, wrong JSON types, a redirect, a slow or trickled answer, an echo of
the key in one of its encoded forms. The app must answer each with a clear 502 or 504 (or pass on the endpoint's
4xx) without the key in any form, in its answer or its log, and the next request, armed with nothing, must
succeed through the same app.
"""

import base64
import http.server
import json
import logging
import re
import threading
import time
import tracemalloc
import urllib.parse

import numpy as np
import pytest
from PIL import Image
from test_webapp import FlaskClient, check_prediction, closed_port_url, post_image

from seglib import labels, predict, webapp
from seglib.webapp import endpoint as endpoint_module
from _images import encode, png_claiming
from _json_server import JsonHandler

#: An Azure ML key is base64: it holds "+", "/" and "=", which URL-encoding and JSON escaping change.
SECRET = "s3cr3t+9f1c2e7a4b6d8e0f/3a5c7e9b1d2f4a6c=="  # fixed: pytest-xdist workers must collect the same ids
#: A secret in the URL's query string (Azure Functions style ``?code=``): scrubbed like the key.
QUERY_SECRET = "q53fb1ec01b5741fda8dff1e42b761d97"
IMAGE = np.random.default_rng(7).integers(0, 256, (40, 72, 3), dtype=np.uint8)
IMAGE_PNG = encode(Image.fromarray(IMAGE))
MB = 1 << 20
HUGE = 64 * MB


def expected_mask(image: np.ndarray) -> np.ndarray:
    """What the fake endpoint predicts: a mask that depends on every pixel, computed without a model."""
    return (image.astype(np.uint16).sum(axis=2) % labels.NUM_CATEGORIES).astype(np.uint8)


def good_answer(data: bytes) -> dict:
    image = predict.decode_image(data)
    return predict.Prediction(image, expected_mask(image)).as_json()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def secret_forms(secret: str) -> dict[str, str]:
    """The forms of a secret an endpoint may echo, written out here independently of the scrubber."""
    raw, bearer = secret.encode(), f"Bearer {secret}".encode()
    quoted = urllib.parse.quote(secret, safe="")
    return {"literal": secret, "quote": quoted, "quote_plus": urllib.parse.quote_plus(secret),
            "quote lower hex": re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quoted),
            "base64": b64(raw), "urlsafe base64": base64.urlsafe_b64encode(raw).decode(),
            "base64 of Bearer": b64(bearer), "urlsafe base64 of Bearer": base64.urlsafe_b64encode(bearer).decode(),
            "JSON-escaped": json.dumps(secret)[1:-1].replace("/", "\\/"), "prefix": secret[:20],
            "suffix": secret[-12:], "middle": secret[5:17]}


def base64_cores(raw: bytes) -> list[str]:
    """The base64 characters that depend on ``raw`` alone, at each of the 3 offsets it can have in a longer text."""
    cores = []
    for offset in range(3):
        encoded = b64(bytes(offset) + raw)
        core = encoded[(8 * offset + 5) // 6: 8 * (offset + len(raw)) // 6]
        cores += [core, core.replace("+", "-").replace("/", "_")]
    return cores


def leaked_pieces(text: str) -> list[str]:
    """Pieces of 8 characters or more of a secret's forms found in ``text`` (empty when nothing leaked); for
    base64, of the characters that depend on the secret alone (the base64 of "Bearer " is no secret). Hex digits
    of URL-encoding are compared in either case."""
    found, folded = [], text.lower()
    for secret in (SECRET, QUERY_SECRET):
        forms = [form for name, form in secret_forms(secret).items() if "base64" not in name]
        for form in forms + base64_cores(secret.encode()):
            haystack = folded if "%" in form else text
            form = form.lower() if "%" in form else form
            found += [form[i:i + 8] for i in range(len(form) - 7) if form[i:i + 8] in haystack]
    return found


# --- the fake endpoint ----------------------------------------------------------------------------------------

class Hostile:
    """The hostile answer armed for the next request to /score, and what the endpoint saw."""

    lock = threading.Lock()
    armed: str | None = None
    stolen: list[str] = []           # Authorization headers that reached /steal
    written = 0                      # bytes of the last huge answer that left the endpoint
    finished = threading.Event()     # set when the handler of a huge answer gives up or ends

    @classmethod
    def arm(cls, case: str | None) -> None:
        with cls.lock:
            cls.armed, cls.written = case, 0
            cls.finished.clear()

    @classmethod
    def take(cls) -> str | None:
        with cls.lock:
            case, cls.armed = cls.armed, None
            return case


CHUNK = b"x" * MB


class FakeEndpoint(JsonHandler):
    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        path = urllib.parse.urlsplit(self.path).path
        if path == "/steal":
            Hostile.stolen.append(self.headers.get("Authorization", ""))
            return self.answer(200, good_answer(data))
        if self.headers.get("Authorization") != f"Bearer {SECRET}":
            return self.answer(401, {"error": "invalid key"})
        case = Hostile.take()
        if case is None:
            return self.answer(200, good_answer(data))
        try:
            getattr(self, "hostile_" + case.replace(" ", "_").replace("-", "_"))(data)
        except OSError:
            pass  # the client gave up, as it should
        finally:
            Hostile.finished.set()

    # ---- hostile answers, one method per case ----

    def hostile_huge_declared(self, data):
        self.huge(data, declare=True)

    def hostile_huge_streamed(self, data):
        self.huge(data, declare=False)

    def huge(self, data: bytes, declare: bool) -> None:
        """A legal answer padded with 64 MiB of JSON string, with or without Content-Length."""
        head, tail = b'{"pad": "', ('", ' + json.dumps(good_answer(data))[1:]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if declare:
            self.send_header("Content-Length", str(len(head) + HUGE + len(tail)))
        self.end_headers()
        self.wfile.write(head)
        for _ in range(HUGE // MB):
            self.wfile.write(CHUNK)
            Hostile.written += MB
        self.wfile.write(tail)
        self.close_connection = True

    def hostile_bomb_mask(self, data):
        huge = png_claiming(30000, 30000, colour_type=0)
        self.answer(200, {"height": 30000, "width": 30000, "mask_png": b64(huge)})

    def hostile_mask_larger_than_the_image(self, data):
        mask = np.zeros((400, 300), np.uint8)  # 120,000 pixels, a legal PNG: more than the 2,880 sent
        self.answer(200, {"height": 400, "width": 300, "mask_png": b64(predict.mask_png(mask))})

    def hostile_gif_mask(self, data):
        image = Image.fromarray(expected_mask(predict.decode_image(data)), "P")
        self.answer(200, {**good_answer(data), "mask_png": b64(encode(image, "GIF"))})

    def hostile_rgb_png_mask(self, data):
        self.answer(200, {**good_answer(data), "mask_png": b64(IMAGE_PNG)})

    def hostile_not_base64(self, data):
        self.answer(200, {**good_answer(data), "mask_png": "!!! not base64 at all !!!"})

    def hostile_answer_is_a_list(self, data):
        self.answer(200, [good_answer(data)])

    def hostile_answer_is_null(self, data):
        self.answer(200, None)

    def hostile_mask_is_a_number(self, data):
        self.answer(200, {**good_answer(data), "mask_png": 12345})

    def hostile_height_is_a_string(self, data):
        answer = good_answer(data)
        self.answer(200, {**answer, "height": str(answer["height"])})

    def hostile_deeply_nested_json(self, data):
        self.raw_answer(200, b"[" * 50_000 + b"]" * 50_000)  # under the byte limit

    def hostile_not_utf_8(self, data):
        self.raw_answer(200, b"\xff\xfe\xfd" + json.dumps(good_answer(data)).encode())

    def hostile_truncated_body(self, data):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b'{"height": 40, ')
        self.close_connection = True

    def hostile_bad_status_line(self, data):
        self.wfile.write(b"HTTP/1.1 two hundred OK\r\n\r\n")
        self.close_connection = True

    def hostile_too_many_headers(self, data):
        self.wfile.write(b"HTTP/1.1 200 OK\r\n" + b"X-Junk: 1\r\n" * 150 + b"\r\n")
        self.close_connection = True

    def redirect(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/steal?{QUERY_SECRET}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def hostile_redirect_302(self, data):
        self.redirect(302)

    def hostile_redirect_307(self, data):
        self.redirect(307)

    def hostile_slow_answer(self, data):
        time.sleep(3)
        self.answer(200, good_answer(data))

    def hostile_trickled_body(self, data):
        """Headers at once, then the body a byte every 0.1 s: each read is quick, the answer never ends."""
        body = json.dumps(good_answer(data)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body[:50]:
            self.wfile.write(bytes([byte]))
            time.sleep(0.1)
        self.close_connection = True

    def hostile_trickled_headers(self, data):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(50):
            self.wfile.write(b"a")
            time.sleep(0.1)
        self.close_connection = True

    def echo(self, status: int, form: str) -> None:
        """An error that quotes this request's Authorization header (or its path) in one form."""
        key = self.headers["Authorization"].removeprefix("Bearer ")
        self.answer(status, {"error": f"cannot score with {secret_forms(key)[form]} (path {self.path!r})"})

    def hostile_key_in_status_line(self, data):
        self.wfile.write(f"HTTP/1.1 {self.headers['Authorization']}\r\n\r\n".encode())
        self.close_connection = True

    def hostile_path_echoed_in_base64(self, data):
        self.answer(500, {"error": "request was " + b64(f"POST {self.path} HTTP/1.1".encode())})

    def hostile_path_echoed_quoted(self, data):
        self.answer(500, {"error": "request was " + urllib.parse.quote(self.path, safe="")})

    def __getattr__(self, name: str):
        if name.startswith("hostile_echo_"):  # hostile_echo_<status>_<form>: see ECHO_FORMS
            status, form = name.removeprefix("hostile_echo_").split("_", 1)
            return lambda data: self.echo(int(status), ECHO_FORMS[form])
        raise AttributeError(name)


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a hostile handler writing to a client that hung up, as it should have


#: {method-name form: secret_forms() key} for the armed echo cases.
ECHO_FORMS = {"literal": "literal", "quote": "quote", "quote_plus": "quote_plus", "lowerhex": "quote lower hex",
              "base64": "base64", "urlsafe": "urlsafe base64", "bearer64": "base64 of Bearer",
              "bearer64url": "urlsafe base64 of Bearer", "json": "JSON-escaped", "prefix": "prefix",
              "suffix": "suffix", "middle": "middle"}


@pytest.fixture(scope="module")
def fake_endpoint():
    server = QuietServer(("127.0.0.1", 0), FakeEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def app_client(url: str, small_dataset, timeout: float = 10.0) -> FlaskClient:
    return FlaskClient(webapp.create_app({"SAMPLES_ROOT": small_dataset, "ENDPOINT_URL": url, "ENDPOINT_KEY": SECRET,
                                          "ENDPOINT_TIMEOUT": timeout, "MODEL_PATH": "/no/model/needed"}))


# --- the table of hostile answers ------------------------------------------------------------------------------

TOO_BIG = "bytes a prediction for this image can take"
NOT_A_PREDICTION = "answered something that is not a prediction"
BROKE = "broke the connection or HTTP"
#: {case: (expected status, words of the message, the app's timeout in seconds)}
HOSTILE = {
    "huge declared": (502, TOO_BIG, 10.0),
    "huge streamed": (502, TOO_BIG, 10.0),
    "bomb mask": (502, "30000x30000 = 900,000,000 pixels", 10.0),
    "mask larger than the image": (502, "300x400 = 120,000 pixels, more than the 2,880 of the image sent", 10.0),
    "gif mask": (502, "mask_png is not a PNG image", 10.0),
    "rgb png mask": (502, "mode RGB", 10.0),
    "not base64": (502, NOT_A_PREDICTION, 10.0),
    "answer is a list": (502, "the answer is a JSON array, not an object", 10.0),
    "answer is null": (502, "the answer is a JSON null, not an object", 10.0),
    "mask is a number": (502, "mask_png is a JSON number", 10.0),
    "height is a string": (502, "not integers", 10.0),
    "deeply nested json": (502, NOT_A_PREDICTION, 10.0),
    "not utf-8": (502, NOT_A_PREDICTION, 10.0),
    "truncated body": (502, "closed the connection after 15 of the 100,000 bytes it announced", 10.0),
    "bad status line": (502, BROKE, 10.0),
    "too many headers": (502, BROKE, 10.0),
    "redirect 302": (502, "redirects elsewhere (302)", 10.0),
    "redirect 307": (502, "redirects elsewhere (307)", 10.0),
    "slow answer": (504, "did not answer within 1 s", 1.0),
    "trickled body": (504, "did not answer within 1 s", 1.0),
    "trickled headers": (504, "did not answer within 1 s", 1.0),
    "key in status line": (502, "***", 10.0),
    "path echoed in base64": (502, "***", 10.0),
    "path echoed quoted": (502, "***", 10.0),
    **{f"echo 400 {form}": (400, "cannot score with ", 10.0) for form in ECHO_FORMS},
    **{f"echo 500 {form}": (502, "failed (500): cannot score with ", 10.0)
       for form in ("literal", "base64", "bearer64", "prefix")},
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_endpoint_answers(fake_endpoint, small_dataset, caplog, case):
    status, words, timeout = HOSTILE[case]
    client = app_client(f"{fake_endpoint}/score?code={QUERY_SECRET}", small_dataset, timeout)
    Hostile.stolen.clear()
    Hostile.arm(case.replace("echo 400 ", "echo_400_").replace("echo 500 ", "echo_500_"))
    with caplog.at_level(logging.DEBUG):
        start = time.monotonic()
        answer = post_image(client, IMAGE_PNG)
        elapsed = time.monotonic() - start
    assert Hostile.armed is None, "the hostile answer was given"
    assert answer.status == status, answer.body[:500]
    message = answer.json()["error"]
    assert words in message
    if "echo" in case or "key" in case:
        assert "***" in message, "the echo was there, and is replaced"
    assert not leaked_pieces(answer.text) and not leaked_pieces(caplog.text)
    assert elapsed < timeout + 2.5, f"{elapsed:.1f} s for a {timeout:g} s timeout"
    assert not Hostile.stolen, "a redirect was followed, with the key"
    # the same app, the next request: as if nothing had happened
    check_prediction(post_image(client, IMAGE_PNG), expected_mask(IMAGE))


def test_a_huge_answer_is_not_read_into_memory(fake_endpoint, small_dataset):
    """64 MiB streamed without Content-Length: the worker reads limit+1 bytes and hangs up; the endpoint's writes
    fail soon after (a few MiB sit in the socket buffers)."""
    client = app_client(f"{fake_endpoint}/score", small_dataset)
    limit = endpoint_module.answer_limit(IMAGE.shape[0] * IMAGE.shape[1])
    Hostile.arm("huge streamed")
    tracemalloc.start()
    try:
        answer = post_image(client, IMAGE_PNG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert answer.status == 502 and f"more than the {limit:,} bytes" in answer.json()["error"]
    assert peak < 8 * MB, f"{peak / MB:.1f} MiB traced while refusing a {HUGE // MB} MiB answer"
    assert Hostile.finished.wait(30)
    assert Hostile.written < HUGE // 2, f"the endpoint sent {Hostile.written / MB:.0f} MiB before the hang-up"


@pytest.mark.parametrize("shape", [(1024, 2048), (predict.MAX_SIDE, 1), (1, predict.MAX_SIDE), (2, 3)])
def test_a_legal_answer_fits_the_answer_limit(shape):
    """The rule of answer_limit: a random mask (the least compressible one score.py can send) encoded twice, as a
    run() returning json.dumps is, still fits; and the limit of the app's largest image stays a few MB."""
    mask = np.random.default_rng(0).integers(0, labels.NUM_CATEGORIES, shape, dtype=np.uint8)
    answer = predict.Prediction(np.zeros((*shape, 3), np.uint8), mask).as_json()
    assert len(json.dumps(json.dumps(answer)).encode()) <= endpoint_module.answer_limit(mask.size)
    assert endpoint_module.answer_limit(webapp.MAX_PIXELS) < 6_000_000


def test_a_mask_bomb_is_refused_by_endpoint_predict_itself(fake_endpoint):
    """A direct caller gets the same 502 (the pixel bound is the image sent), and so does one sending bytes with
    no readable header, bounded by max_pixels."""
    Hostile.arm("bomb mask")
    with pytest.raises(webapp.EndpointError) as caught:
        webapp.endpoint_predict(f"{fake_endpoint}/score", SECRET, IMAGE_PNG, timeout=10)
    assert caught.value.status == 502 and "more than the 2,880 of the image sent" in str(caught.value)
    Hostile.arm("mask larger than the image")
    with pytest.raises(webapp.EndpointError, match="more than the 1,000 of the image sent"):
        webapp.endpoint_predict(f"{fake_endpoint}/score", SECRET, IMAGE_PNG, timeout=10, max_pixels=1000)


def test_https_goes_through_the_watched_handler():
    url = closed_port_url().replace("http://", "https://")
    with pytest.raises(webapp.EndpointError, match="is unreachable") as caught:
        webapp.endpoint_predict(url, SECRET, IMAGE_PNG, timeout=5)
    assert caught.value.status == 502


# --- settings: the timeout and the URL --------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e308", "1e309", "600.5", "0", "-1", "abc"])
def test_a_bad_endpoint_timeout_is_refused_at_startup(small_dataset, monkeypatch, text):
    monkeypatch.setenv(webapp.ENDPOINT_TIMEOUT_ENV, text)
    with pytest.raises(ValueError, match=webapp.ENDPOINT_TIMEOUT_ENV):
        webapp.create_app({"SAMPLES_ROOT": small_dataset, "ENDPOINT_URL": "http://127.0.0.1:9/score"})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e308, 0, -2.0, "5", True])
def test_a_bad_endpoint_timeout_setting_is_refused_at_startup(small_dataset, monkeypatch, value):
    monkeypatch.delenv(webapp.ENDPOINT_TIMEOUT_ENV, raising=False)
    with pytest.raises(ValueError, match=f"{webapp.ENDPOINT_TIMEOUT_ENV} \\(ENDPOINT_TIMEOUT\\) must be a number"):
        webapp.create_app({"SAMPLES_ROOT": small_dataset, "ENDPOINT_URL": "http://127.0.0.1:9/score",
                           "ENDPOINT_TIMEOUT": value})


@pytest.mark.parametrize("text, seconds", [("0.5", 0.5), ("600", 600.0), ("", 60.0)])
def test_a_good_endpoint_timeout_is_taken(fake_endpoint, small_dataset, monkeypatch, text, seconds):
    monkeypatch.setenv(webapp.ENDPOINT_TIMEOUT_ENV, text)
    monkeypatch.setenv(webapp.ENDPOINT_URL_ENV, f"{fake_endpoint}/score")
    monkeypatch.setenv(webapp.ENDPOINT_KEY_ENV, SECRET)
    app = webapp.create_app({"SAMPLES_ROOT": small_dataset})
    assert app.extensions["seglib"].config["ENDPOINT_TIMEOUT"] == seconds
    check_prediction(post_image(FlaskClient(app), IMAGE_PNG), expected_mask(IMAGE))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e308, 0.0])
def test_endpoint_predict_refuses_a_bad_timeout(value):
    """Before: nan was a 502 blaming the URL and key, inf and 1e308 an OverflowError (a 500 in the app)."""
    with pytest.raises(ValueError, match="timeout must be a number of seconds"):
        webapp.endpoint_predict(closed_port_url(), SECRET, IMAGE_PNG, timeout=value)


@pytest.mark.parametrize("userinfo", [f"user:{QUERY_SECRET}@", "user@", f":{QUERY_SECRET}@", "@"])
@pytest.mark.parametrize("how", ["environment", "config"])
def test_user_info_in_the_endpoint_url_is_refused_at_startup(small_dataset, monkeypatch, userinfo, how):
    """Before: accepted, then every request failed with "Name or service not known"."""
    url = f"http://{userinfo}127.0.0.1:9/score"
    monkeypatch.setenv(webapp.ENDPOINT_URL_ENV, url if how == "environment" else "")
    config = {"SAMPLES_ROOT": small_dataset, **({"ENDPOINT_URL": url} if how == "config" else {})}
    with pytest.raises(ValueError) as caught:
        webapp.create_app(config)
    message = str(caught.value)
    assert message.startswith(f"{webapp.ENDPOINT_URL_ENV} carries user info") and webapp.ENDPOINT_KEY_ENV in message
    assert QUERY_SECRET[:8] not in message and "user" + ":" not in message
