"""The web app against a hostile client: a real ``gunicorn app:app`` on loopback spoken to over raw sockets (so that
headers can lie and bodies can be chunked, cut or trickled), a property-based fuzz of the upload path in process,
slow clients and overload, and the gunicorn harness's control socket.

Every hostile request in the table is followed by a good one, which must still get the right mask. Statuses are
written out in the table; where gunicorn itself refuses a request before the app sees it, the case says so.
"""

import http.server
import io
import json
import os
import runpy
import select
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from seglib import cityscapes, predict, webapp
from seglib.webapp import settings as webapp_settings
from _images import encode, png_chunk, png_claiming
from _json_server import JsonHandler

ROOT = Path(__file__).resolve().parents[1]
MAX_UPLOAD = 1 << 20   # small limits, so that the refusals are cheap to provoke
MAX_PIXELS = 100_000
UPLOAD_TIMEOUT = 6     # seconds a trickled upload may take before its 408, on the module's server
# the app's settings for admission and uploads (seglib.webapp.service), written out: they are public names
MAX_WAITING_ENV = "SEGLIB_MAX_WAITING_PREDICTIONS"
UPLOAD_TIMEOUT_ENV = "SEGLIB_UPLOAD_TIMEOUT"
#: prediction requests one worker takes on by default: in its slots, and waiting for one (or uploading)
SLOTS = webapp.MAX_CONCURRENT_PREDICTIONS
CAPACITY = SLOTS + webapp_settings.MAX_WAITING_PREDICTIONS


# --- raw HTTP over a socket -------------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> dict:
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def dechunk(body: bytes) -> bytes:
    out, rest = bytearray(), body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2:]
    return bytes(out)


def parse_reply(data: bytes) -> Reply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1."), f"not an HTTP answer: {data[:200]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", ""):
        body = dechunk(body)
    return Reply(int(lines[0].split()[1]), headers, body)


def read_to_end(sock: socket.socket) -> bytes:
    parts = []
    while True:
        try:
            part = sock.recv(1 << 16)
        except ConnectionResetError:
            break
        if not part:
            break
        parts.append(part)
    return b"".join(parts)


def exchange(url: str, request: bytes, timeout: float = 60.0, half_close: bool = False) -> Reply:
    """Send ``request`` (all of it, from a thread, so that a server answering early is read) and read the answer
    to the end of the connection (the requests say ``Connection: close``). ``half_close`` ends the sending side
    afterwards, as a client that sent less than it declared and stopped would."""
    address = urllib.parse.urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
        def send() -> None:
            try:
                sock.sendall(request)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server answered and closed before taking everything: its answer is read below

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        data = read_to_end(sock)
        sender.join(timeout)
    return parse_reply(data)


def chunked(body: bytes, size: int = 65536) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def raw_request(method: str, path: str, body: bytes = b"", content_type: str | None = None,
                headers: tuple[str, ...] = (), length: int | str | None = None, chunk: int = 0,
                framed: bool = True) -> bytes:
    """An HTTP/1.1 request as bytes: ``Content-Length`` is ``len(body)`` unless ``length`` says otherwise (a lie);
    ``chunk`` > 0 sends the body chunked in pieces of that size instead; ``framed=False`` sends neither header
    (``headers`` then say how the body is framed, ``body`` is sent as written). ``headers`` are added as written."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if not framed:
        pass
    elif chunk:
        lines.append("Transfer-Encoding: chunked")
        body = chunked(body, chunk)
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    elif body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --- images and forms ------------------------------------------------------------------------------------------

def padded_png(png: bytes, extra: int) -> bytes:
    """``png`` with an ancillary chunk of ``extra`` bytes after its header: the same small picture, a large file."""
    end_of_ihdr = 8 + 25
    return png[:end_of_ihdr] + png_chunk(b"seGl", bytes(extra)) + png[end_of_ihdr:]


def jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header (SOF0) patched to claim ``width`` x ``height``."""
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[:sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[sof + 9:]


def multipart(fields: dict[str, str] | None = None, files: dict[str, tuple[str, bytes]] | None = None,
              boundary: str | None = None, close: bool = True) -> tuple[bytes, str]:
    boundary = boundary or uuid.uuid4().hex
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in (files or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f'Content-Type: application/octet-stream\r\n\r\n'.encode() + data + b"\r\n")
    ending = f"--{boundary}--\r\n".encode() if close else b""
    return b"".join(parts) + ending, f"multipart/form-data; boundary={boundary}"


# --- fixtures ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rgb(small_dataset) -> np.ndarray:
    """A (64, 128, 3) street scene that is not one of the samples (a train frame, mirrored)."""
    frame = cityscapes.list_frames(small_dataset, "train")[0]
    return np.ascontiguousarray(cityscapes.read_image(frame.image_path)[:, ::-1])


@pytest.fixture(scope="module")
def images(rgb) -> dict[str, bytes]:
    png = encode(Image.fromarray(rgb))
    jpeg = encode(Image.fromarray(rgb), "JPEG", quality=85)
    return {"png": png, "jpeg": jpeg, "big png": padded_png(png, 3 * MAX_UPLOAD // 2)}


@pytest.fixture(scope="module")
def predictor(tiny_model_path) -> predict.Predictor:
    return predict.Predictor(tiny_model_path)


@pytest.fixture(scope="module")
def server(tiny_model_path, small_dataset):
    """``gunicorn app:app`` with the tiny model, the repository's gunicorn settings and small limits."""
    env = {"SEGLIB_MODEL": str(tiny_model_path), "CITYSCAPES_DATASET": str(small_dataset),
           webapp.MAX_UPLOAD_ENV: str(MAX_UPLOAD), webapp.MAX_PIXELS_ENV: str(MAX_PIXELS), webapp.ENDPOINT_URL_ENV: "",
           UPLOAD_TIMEOUT_ENV: str(UPLOAD_TIMEOUT)}
    for name in (webapp.MAX_PREDICTIONS_ENV, MAX_WAITING_ENV):
        env[name] = ""  # the defaults, whatever the test run's environment says
    with webapp.gunicorn_server("app:app", cwd=ROOT, env=env) as running:
        yield running
        assert running.process.poll() is None, f"gunicorn died during the tests:\n{running.log_tail()}"


def check_good_request(url: str, images: dict[str, bytes], predictor: predict.Predictor) -> None:
    """A good upload after a bad one: still the mask of ``predict_bytes``."""
    reply = exchange(url, raw_request("POST", "/api/predict", images["png"], "application/octet-stream"))
    assert reply.status == 200, reply.body[:300]
    mask = predict.decode_mask_png(reply.json()["mask_png"])
    np.testing.assert_array_equal(mask, predictor.predict_bytes(images["png"]).categories)


# --- the hostile-input table ------------------------------------------------------------------------------------

@dataclass
class Case:
    request: bytes
    status: int
    words: str = ""              # in the error message, when the app (not gunicorn) answers
    half_close: bool = False     # the client stops sending after the request
    allow: tuple[str, ...] = ()  # the methods a 405 or an OPTIONS answer names


ROUTES = {"/": ("GET", "HEAD", "OPTIONS"), "/predict": ("OPTIONS", "POST"), "/api/predict": ("OPTIONS", "POST"),
          "/health": ("GET", "HEAD", "OPTIONS"), "/sample/{sample}": ("GET", "HEAD", "OPTIONS")}
ODD_METHODS = ("PUT", "DELETE", "TRACE", "OPTIONS", "PATCH", "BREW")


def hostile_cases(images: dict[str, bytes], sample: str, sample_path: Path) -> dict[str, Case]:
    png, jpeg, big = images["png"], images["jpeg"], images["big png"]
    raw = "application/octet-stream"
    api = "/api/predict"
    cases = {
        # bombs: a header that claims more pixels than the server decodes is refused before decoding
        "PNG claims 100000x100000": Case(raw_request("POST", api, png_claiming(100_000, 100_000), raw), 413,
                                         "too many pixels"),
        "PNG claims 1x100000": Case(raw_request("POST", api, png_claiming(1, 100_000), raw), 413, "sides longer"),
        "JPEG claims 60000x60000": Case(raw_request("POST", api, jpeg_claiming(jpeg, 60_000, 60_000), raw), 413,
                                        "pixels"),
        "PNG claims 0x0": Case(raw_request("POST", api, png_claiming(0, 0), raw), 400, ""),
        "bomb in a form": Case(raw_request("POST", "/predict",
                                           *multipart(files={"image": ("b.png", png_claiming(50_000, 50_000))})),
                               413, "pixels"),
        # truncated images
        "PNG cut in half": Case(raw_request("POST", api, png[: len(png) // 2], raw), 400, "truncated"),
        "PNG signature only": Case(raw_request("POST", api, png[:8], raw), 400, "not an image"),
        "JPEG cut in half": Case(raw_request("POST", api, jpeg[: len(jpeg) // 2], raw), 400, "truncated"),
        # lying Content-Type: the raw body is the image whatever the type says; a form type is parsed as a form
        "text sent as image/png": Case(raw_request("POST", api, b"just text", "image/png"), 400, "not an image"),
        "PNG sent as JSON": Case(raw_request("POST", api, png, "application/json"), 200),
        "PNG sent as urlencoded form": Case(raw_request("POST", api, png, "application/x-www-form-urlencoded"), 200),
        "PNG as multipart without boundary": Case(raw_request("POST", api, png, "multipart/form-data"), 400,
                                                  "'image'"),
        "GIF sent as image/png": Case(raw_request("POST", api, encode(Image.open(io.BytesIO(png)).convert("P"), "GIF"),
                                                  "image/png"), 415, "GIF"),
        # lying Content-Length
        "Content-Length longer than the body": Case(raw_request("POST", api, png, raw, length=len(png) + 1000), 400,
                                                    "ended before", half_close=True),
        "Content-Length shorter than the body": Case(raw_request("POST", api, png, raw, length=len(png) // 2), 400,
                                                     "truncated"),
        "Content-Length over the limit, body small": Case(raw_request("POST", api, png, raw, length=4 * MAX_UPLOAD),
                                                          413, "larger than", half_close=True),
        "upload over the limit": Case(raw_request("POST", api, big, raw), 413, "larger than"),
        # gunicorn refuses these itself (400), before the app
        "Content-Length negative": Case(raw_request("POST", api, png, raw, length=-5), 400),
        "Content-Length not a number": Case(raw_request("POST", api, png, raw, length="12abc"), 400),
        "Content-Length twice, differing": Case(raw_request("POST", api, png, raw,
                                                            headers=(f"Content-Length: {len(png) - 1}",)), 400),
        "Content-Length and chunked": Case(raw_request("POST", api, png, raw, chunk=65536,
                                                       headers=(f"Content-Length: {len(png)}",)), 400),
        "chunk size not hex": Case(raw_request("POST", api, b"zz\r\n" + png + b"\r\n0\r\n\r\n", raw,
                                               headers=("Transfer-Encoding: chunked",), framed=False), 400),
        # chunked uploads over and under the limit
        "chunked PNG": Case(raw_request("POST", api, png, raw, chunk=65536), 200),
        "chunked JPEG in 97-byte chunks": Case(raw_request("POST", api, jpeg, raw, chunk=97), 200),
        "chunked over the limit": Case(raw_request("POST", api, big, raw, chunk=65536), 413, "larger than"),
        "chunked form over the limit": Case(raw_request("POST", "/predict",
                                                        *multipart(files={"image": ("big.png", big)}), chunk=65536),
                                            413, "larger than"),
        "chunked form under the limit": Case(raw_request("POST", "/predict",
                                                         *multipart(files={"image": ("p.png", png)}), chunk=1000),
                                             200),
        "chunked body without its last chunk": Case(raw_request("POST", api, b"%x\r\n" % len(png) + png + b"\r\n",
                                                                raw, headers=("Transfer-Encoding: chunked",),
                                                                framed=False), 400, half_close=True),
        # malformed multipart
        "multipart without closing boundary": Case(raw_request("POST", api, *multipart(
            files={"image": ("p.png", png)}, close=False)), 400, ""),
        "multipart with another boundary": Case(raw_request(
            "POST", api, multipart(files={"image": ("p.png", png)}, boundary="aaaa")[0],
            "multipart/form-data; boundary=bbbb"), 400, "'image'"),
        "multipart part without headers": Case(raw_request(
            "POST", api, b"--xyz\r\n\r\n" + png + b"\r\n--xyz--\r\n", "multipart/form-data; boundary=xyz"), 400,
            "'image'"),
        "multipart with 2000 parts": Case(raw_request("POST", api, *multipart(
            fields={f"f{i}": "x" for i in range(2000)}, files={"image": ("p.png", png)})), 413, "parts"),
        "multipart image that is text": Case(raw_request("POST", "/predict", *multipart(
            files={"image": ("p.png", b"a list")})), 400, "not an image"),
        # sample ids that try to be paths
        "sample ../../etc/passwd": Case(raw_request("GET", "/sample/../../etc/passwd"), 404),
        "sample ..%2F..%2Fetc%2Fpasswd": Case(raw_request("GET", "/sample/..%2F..%2Fetc%2Fpasswd"), 404),
        "sample %2e%2e%2f%2e%2e%2fetc%2fpasswd": Case(raw_request("GET", "/sample/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
                                                      404),
        "sample ..%252F..%252Fetc%252Fpasswd": Case(raw_request("GET", "/sample/..%252F..%252Fetc%252Fpasswd"), 404,
                                                    "no sample"),
        "sample %2e%2e": Case(raw_request("GET", "/sample/%2e%2e"), 404, "no sample"),
        "sample %00": Case(raw_request("GET", "/sample/%00"), 404, "no sample"),
        "sample by absolute path": Case(raw_request("GET", "/sample/" + urllib.parse.quote(str(sample_path), safe="")),
                                        404),
        "sample path in a form": Case(raw_request("POST", "/predict", *multipart(fields={"sample": str(sample_path)})),
                                      404, "no sample"),
        "static ../../app.py": Case(raw_request("GET", "/static/../../app.py"), 404),
        "static ..%2f..%2fapp.py": Case(raw_request("GET", "/static/..%2f..%2fapp.py"), 404),
    }
    for route, allowed in ROUTES.items():
        path = route.format(sample=sample)
        for method in ODD_METHODS:
            if method == "OPTIONS":
                cases[f"{method} {route}"] = Case(raw_request(method, path), 200, allow=allowed)
            else:
                cases[f"{method} {route}"] = Case(raw_request(method, path), 405, allow=allowed)
    return cases


CASE_NAMES = [
    "PNG claims 100000x100000", "PNG claims 1x100000", "JPEG claims 60000x60000", "PNG claims 0x0", "bomb in a form",
    "PNG cut in half", "PNG signature only", "JPEG cut in half", "text sent as image/png", "PNG sent as JSON",
    "PNG sent as urlencoded form", "PNG as multipart without boundary", "GIF sent as image/png",
    "Content-Length longer than the body", "Content-Length shorter than the body",
    "Content-Length over the limit, body small", "upload over the limit", "Content-Length negative",
    "Content-Length not a number", "Content-Length twice, differing", "Content-Length and chunked",
    "chunk size not hex", "chunked PNG", "chunked JPEG in 97-byte chunks", "chunked over the limit",
    "chunked form over the limit", "chunked form under the limit", "chunked body without its last chunk",
    "multipart without closing boundary", "multipart with another boundary", "multipart part without headers",
    "multipart with 2000 parts", "multipart image that is text", "sample ../../etc/passwd",
    "sample ..%2F..%2Fetc%2Fpasswd", "sample %2e%2e%2f%2e%2e%2fetc%2fpasswd", "sample ..%252F..%252Fetc%252Fpasswd",
    "sample %2e%2e", "sample %00", "sample by absolute path", "sample path in a form", "static ../../app.py",
    "static ..%2f..%2fapp.py",
    *[f"{method} {route}" for route in ROUTES for method in ODD_METHODS],
]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_request_gets_its_status_and_the_server_keeps_serving(server, images, predictor, small_dataset,
                                                                      name):
    frame = cityscapes.list_frames(small_dataset, "val")[0]
    case = hostile_cases(images, frame.stem, frame.image_path)[name]
    reply = exchange(server.url, case.request, half_close=case.half_close)
    assert reply.status == case.status, (reply.status, reply.body[:300])
    if case.words:
        if reply.headers.get("content-type", "").startswith("application/json"):
            message = reply.json()["error"]
        else:
            message = reply.text
        assert case.words.lower() in message.lower(), message[:500]
    if case.allow:
        assert sorted(reply.headers["allow"].split(", ")) == sorted(case.allow)
    if str(small_dataset).encode() not in case.request:  # (the app quotes a sample id it was sent, as text)
        assert str(small_dataset) not in reply.text  # no server path, whatever the answer
    check_good_request(server.url, images, predictor)


def test_the_table_covers_every_case(images):
    assert sorted(CASE_NAMES) == sorted(hostile_cases(images, "x", Path("/x")))


def test_chunked_upload_over_the_limit_is_a_413_like_a_declared_one(server, images):
    """The defect: werkzeug's stream for a chunked body ends at the limit, so a valid image larger than the limit
    arrived cut and got 400 ("not an image" / "truncated"); declared with Content-Length it got 413."""
    big = images["big png"]
    assert len(big) > MAX_UPLOAD and predict.decode_image(big).shape == (64, 128, 3)  # valid, just large
    for chunk in (True, False):
        reply = exchange(server.url, raw_request("POST", "/api/predict", big, "application/octet-stream",
                                                 chunk=65536 if chunk else 0))
        assert reply.status == 413 and f"larger than the {MAX_UPLOAD:,} bytes" in reply.json()["error"]


# --- fuzzing the upload path in process ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flask_app(tiny_model_path, small_dataset):
    return webapp.create_app({"MODEL_PATH": tiny_model_path, "SAMPLES_ROOT": small_dataset,
                              "MAX_CONTENT_LENGTH": MAX_UPLOAD, "MAX_PIXELS": MAX_PIXELS, "ENDPOINT_URL": None})


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    data = bytearray(data)
    for kind, position, value in mutations:
        at = position % max(1, len(data))
        if kind == "flip":
            data[at] ^= value
        elif kind == "set header byte":
            data[min(at, 63)] = value
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = value
        elif kind == "delete":
            del data[at:at + value]
        elif kind == "repeat":
            data[at:at] = data[at:at + 256] * value
    return bytes(data)


MUTATIONS = st.lists(st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(1, 255)),
    st.tuples(st.just("set header byte"), st.integers(0, 63), st.integers(0, 255)),  # IHDR, SOF: sizes, modes
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 512)),
    st.tuples(st.just("repeat"), st.integers(0, 1 << 20), st.integers(2, 64)),
), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(["png", "jpeg"]), mutations=MUTATIONS, as_multipart=st.booleans())
def test_mutated_uploads_never_get_a_500_and_are_answered_quickly(flask_app, images, base, mutations, as_multipart):
    data = mutate(images[base], mutations)
    client = flask_app.test_client()
    start = time.monotonic()
    if as_multipart:
        body, content_type = multipart(files={"image": ("m.bin", data)})
        response = client.post("/api/predict", data=body, content_type=content_type)
    else:
        response = client.post("/api/predict", data=data, content_type="application/octet-stream")
    assert time.monotonic() - start < 10
    assert response.status_code in (200, 400, 413, 415), response.get_data()[:300]
    answer = response.get_json()
    assert ("mask_png" in answer) if response.status_code == 200 else answer["status"] == response.status_code


# --- slow clients and overload ------------------------------------------------------------------------------------

@dataclass
class Trickler:
    """A client that sends ``head`` and then one byte a second of the body it declared, until the server answers
    (its status is kept) or ``stop`` is set. ``head_too`` trickles the request line and headers as well."""

    url: str
    head: bytes
    head_too: bool = False
    status: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> "Trickler":
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        address = urllib.parse.urlsplit(self.url)
        with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
            pending = self.head if self.head_too else b"x" * 100_000
            if not self.head_too:
                sock.sendall(self.head)
            while not self.stop.is_set() and pending:
                readable, _, _ = select.select([sock], [], [], 1.0)
                if readable:
                    data = read_to_end(sock)
                    self.status = parse_reply(data).status if data else None
                    return
                try:
                    sock.sendall(pending[:1])
                except OSError:
                    return
                pending = pending[1:]


def slow_upload(url: str) -> Trickler:
    return Trickler(url, raw_request("POST", "/api/predict", b"", "application/octet-stream",
                                     length=100_000)).start()


def get_within(url: str, path: str, seconds: float) -> tuple[int, dict[str, str]]:
    """The status and headers of ``GET url+path``; fails (TimeoutError) if no answer comes within ``seconds``."""
    try:
        with urllib.request.urlopen(url + path, timeout=seconds) as answer:
            answer.read()
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def post_within(url: str, data: bytes, seconds: float) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url + "/api/predict", data=data, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=seconds) as answer:
            answer.read()
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, dict(error.headers)


def test_slow_uploads_neither_stop_health_nor_queue_without_bound(server, images, predictor):
    """Four uploads trickled at 1 byte/s (and two clients trickling their headers) leave /health and the page
    answering within 1 s; more fill the worker's admissions (2 slots + 6 waiting by default), after which a
    prediction request gets 503 with Retry-After at once; the upload deadline then ends the trickled uploads (408)."""
    uploads = [slow_upload(server.url) for _ in range(4)]
    headers_only = [Trickler(server.url, raw_request("GET", "/health"), head_too=True).start() for _ in range(2)]
    try:
        time.sleep(1.5)  # gunicorn has taken them all on
        for path in ("/health", "/"):
            status, _ = get_within(server.url, path, 1.0)
            assert status == 200
        uploads += [slow_upload(server.url) for _ in range(CAPACITY - 4)]
        time.sleep(1.5)  # gunicorn has taken them on: the worker is full
        for _ in range(4):
            start = time.monotonic()
            status, headers = post_within(server.url, images["png"], 1.0)
            assert status == 503 and int(headers["Retry-After"]) > 0
            assert time.monotonic() - start < 1.0
        assert get_within(server.url, "/health", 1.0)[0] == 200
        for upload in uploads:
            upload.thread.join(timeout=UPLOAD_TIMEOUT + 10)
        assert [upload.status for upload in uploads] == [408] * CAPACITY
    finally:
        for client in uploads + headers_only:
            client.stop.set()
        for client in uploads + headers_only:
            client.thread.join(timeout=10)
    check_good_request(server.url, images, predictor)


class Gate:
    """The fake endpoint holds each prediction until ``release`` is set, counting how many it holds."""

    lock = threading.Lock()
    release = threading.Event()
    inside = 0


class GatedEndpoint(JsonHandler):
    """An Azure ML endpoint that answers an all-zero mask of the image's size, once the gate is opened."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with Gate.lock:
            Gate.inside += 1
        Gate.release.wait(timeout=60)
        with Gate.lock:
            Gate.inside -= 1
        image = predict.decode_image(body)
        self.answer(200, predict.Prediction(image, np.zeros(image.shape[:2], np.uint8)).as_json())


def test_slow_predictions_beyond_capacity_get_a_quick_503(small_dataset, images):
    """App Service mode with an endpoint that holds every prediction: eight requests fill a worker (two in the
    endpoint, six waiting for a slot); more get 503 with Retry-After at once, and /health and the page still
    answer within 1 s; once the endpoint answers, the eight get their masks."""
    endpoint = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GatedEndpoint)
    endpoint.daemon_threads = True
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    Gate.release.clear()
    env = {"CITYSCAPES_DATASET": str(small_dataset), webapp.ENDPOINT_URL_ENV:
           f"http://127.0.0.1:{endpoint.server_address[1]}/score", webapp.ENDPOINT_KEY_ENV: "",
           webapp.MAX_PREDICTIONS_ENV: "", MAX_WAITING_ENV: ""}
    results: list[tuple[int, dict]] = []
    try:
        with webapp.gunicorn_server("app:app", cwd=ROOT, env=env, ready_timeout=60) as app:
            admitted = [threading.Thread(target=lambda: results.append(post_within(app.url, images["png"], 60)))
                        for _ in range(CAPACITY)]
            try:
                for thread in admitted:
                    thread.start()
                deadline = time.monotonic() + 30
                while Gate.inside < SLOTS and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert Gate.inside == SLOTS, "two predictions at once per worker (MAX_CONCURRENT_PREDICTIONS)"
                time.sleep(1.5)  # the others wait for a slot
                for _ in range(4):
                    start = time.monotonic()
                    status, headers = post_within(app.url, images["png"], 1.0)
                    assert status == 503 and int(headers["Retry-After"]) > 0
                    assert time.monotonic() - start < 1.0
                assert get_within(app.url, "/health", 1.0)[0] == 200
                assert get_within(app.url, "/", 1.0)[0] == 200
                assert Gate.inside == SLOTS
            finally:
                Gate.release.set()
                for thread in admitted:
                    thread.join(timeout=60)
            assert sorted(status for status, _ in results) == [200] * CAPACITY
            assert post_within(app.url, images["png"], 30)[0] == 200
    finally:
        endpoint.shutdown()
        endpoint.server_close()


# --- what a missing model shows, and gunicorn's settings ----------------------------------------------------------

def test_a_missing_model_is_a_503_without_the_servers_path(small_dataset, tmp_path, caplog):
    hidden = tmp_path / "secret-folder" / "absent.keras"
    app = webapp.create_app({"MODEL_PATH": hidden, "SAMPLES_ROOT": small_dataset, "ENDPOINT_URL": None})
    with caplog.at_level("ERROR"):
        answers = [app.test_client().get("/health"), app.test_client().get("/")]
    health = answers[0]
    assert health.status_code == 503 and health.get_json()["error"].startswith("no model loaded")
    for answer in answers:
        assert "secret-folder" not in answer.get_data(as_text=True)
    assert str(hidden) in caplog.text  # the operator reads it in the log


def test_gunicorn_conf_is_the_packages_settings_and_leaves_threads_for_health(tiny_model_path, small_dataset):
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert (conf["worker_class"], conf["workers"], conf["threads"]) == (
        "gthread", webapp.GUNICORN_WORKERS, webapp.GUNICORN_THREADS)
    assert (webapp_settings.MAX_WAITING_ENV, webapp_settings.UPLOAD_TIMEOUT_ENV) == (MAX_WAITING_ENV,
                                                                                  UPLOAD_TIMEOUT_ENV)
    assert webapp.GUNICORN_THREADS >= 2 * CAPACITY  # threads for /health, the page and 503s beyond the admitted
    # gunicorn reads it from the working directory, as App Service's command would
    env = {**os.environ, "SEGLIB_MODEL": str(tiny_model_path), "CITYSCAPES_DATASET": str(small_dataset)}
    env.pop("GUNICORN_CMD_ARGS", None)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    printed = subprocess.run([str(gunicorn), "--print-config", "app:app"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr[-2000:]
    settings_printed = dict(line.split("=", 1) for line in printed.stdout.splitlines() if "=" in line)
    assert {name.strip(): value.strip() for name, value in settings_printed.items()
            if name.strip() in ("threads", "workers", "worker_class")} == {
        "threads": str(webapp.GUNICORN_THREADS), "workers": str(webapp.GUNICORN_WORKERS), "worker_class": "gthread"}


MINI_APP = '''def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode()]
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Unix sockets in a temporary folder")
def test_servers_started_together_each_have_their_own_control_socket(tmp_path):
    """gunicorn (25.1+) binds a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl by
    default: servers started together would replace each other's, and the first to stop would delete it."""
    (tmp_path / "mini.py").write_text(MINI_APP)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": ""}
    with webapp.gunicorn_server("mini:app", cwd=tmp_path, env=env) as first, \
            webapp.gunicorn_server("mini:app", cwd=tmp_path, env=env) as second:
        sockets = [first.control_socket, second.control_socket]
        assert sockets[0] != sockets[1]
        for path in sockets:
            deadline = time.monotonic() + 30
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.1)  # gunicorn binds it from a thread of its own
            assert stat.S_ISSOCK(path.stat().st_mode)
    assert not (home / ".gunicorn").exists()
    assert not any(path.exists() for path in sockets)  # removed with the servers

