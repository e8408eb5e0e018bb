"""The web app (seglib.webapp), through Flask's test client and through a real ``gunicorn app:app`` on loopback.

Every mask the app answers is compared with ``Predictor.predict_bytes`` (or ``predict_array`` on an RGB image built
independently) run here in the test process; every bad input is followed by a good request that must still work.
The Azure ML endpoint client is tested against small HTTP servers on loopback that answer as an endpoint would.
Apps meant to predict locally are made with ``ENDPOINT_URL: None``, so that an endpoint set in the environment of
the test run cannot change what they test.
"""

import base64
import html.parser
import http.server
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglib import cityscapes, datasets, labels, predict, profiles, synthetic, viz, webapp
from _images import encode, png_claiming
from _json_server import JsonHandler

ROOT = Path(__file__).resolve().parents[1]
MAX_UPLOAD = 1 << 20       # small limits, so that the refusals are cheap to provoke
MAX_PIXELS = 100_000
KEY = "test-key-" + uuid.uuid4().hex


# --- two clients with one interface ---------------------------------------------------------------------------

class Answer:
    def __init__(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None):
        self.status, self.content_type, self.body, self.headers = status, content_type, body, headers or {}

    def json(self) -> dict:
        assert self.content_type.startswith("application/json"), self.content_type
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class FlaskClient:
    def __init__(self, app):
        self._client = app.test_client()

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> Answer:
        response = self._client.open(path, method=method, data=body, content_type=content_type)
        return Answer(response.status_code, response.content_type or "", response.get_data(), dict(response.headers))


class HttpClient:
    def __init__(self, url: str):
        self.url = url

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> Answer:
        headers = {"Content-Type": content_type} if content_type else {}
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return Answer(response.status, response.headers.get("Content-Type", ""), response.read(),
                              dict(response.headers))
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers.get("Content-Type", ""), error.read(), dict(error.headers))


def multipart(fields: dict[str, str] | None = None, files: dict[str, tuple[str, bytes]] | None = None):
    """``(body, content type)`` of a multipart/form-data request, as a browser sends a form."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in (files or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f'Content-Type: application/octet-stream\r\n\r\n'.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post_image(client, data: bytes, as_multipart: bool = False) -> Answer:
    if as_multipart:
        return client.request("POST", "/api/predict", *multipart(files={"image": ("photo.png", data)}))
    return client.request("POST", "/api/predict", data, "application/octet-stream")


class Page(html.parser.HTMLParser):
    """What the tests read from a page: option values, data-URI images by id, legend rows, the error text."""

    def __init__(self, text: str):
        super().__init__()
        self.options, self.images, self.legend, self.error, self._in_error = [], {}, {}, None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "option":
            self.options.append(attrs["value"])
        elif tag == "img" and attrs.get("src", "").startswith("data:image/png;base64,"):
            self.images[attrs["id"]] = decode_png(base64.b64decode(attrs["src"].split(",", 1)[1]))
        elif tag == "tr" and "data-category" in attrs:
            self.legend[attrs["data-category"]] = float(attrs["data-share"])
        elif attrs.get("id") == "error":
            self._in_error = True

    def handle_data(self, data):
        if self._in_error:
            self.error, self._in_error = data.strip(), False


# --- images ---------------------------------------------------------------------------------------------------

def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


@pytest.fixture(scope="module")
def rgb(small_dataset) -> np.ndarray:
    """A (64, 128, 3) street scene that is not one of the samples (a train frame, mirrored)."""
    frame = cityscapes.list_frames(small_dataset, "train")[0]
    return np.ascontiguousarray(cityscapes.read_image(frame.image_path)[:, ::-1])


@pytest.fixture(scope="module")
def predictor(tiny_model_path) -> predict.Predictor:
    return predict.Predictor(tiny_model_path)


def check_prediction(answer: Answer, expected: np.ndarray) -> None:
    assert answer.status == 200, answer.body[:500]
    result = answer.json()
    mask = predict.decode_mask_png(result["mask_png"])
    np.testing.assert_array_equal(mask, expected)
    assert (result["height"], result["width"]) == expected.shape
    assert result["categories"] == list(labels.CATEGORY_NAMES)
    # where the time went, for browsers' developer tools and benchmarks/bench_serving.py
    assert re.fullmatch(r"predict;dur=\d+\.\d, encode;dur=\d+\.\d", answer.headers["Server-Timing"])


# --- the two servers ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flask_client(tiny_model_path, small_dataset):
    app = webapp.create_app({"MODEL_PATH": tiny_model_path, "SAMPLES_ROOT": small_dataset,
                             "MAX_CONTENT_LENGTH": MAX_UPLOAD, "MAX_PIXELS": MAX_PIXELS, "ENDPOINT_URL": None})
    return FlaskClient(app)


@pytest.fixture(scope="module")
def gunicorn_client(tiny_model_path, small_dataset):
    env = {"SEGLIB_MODEL": str(tiny_model_path), "CITYSCAPES_DATASET": str(small_dataset),
           webapp.MAX_UPLOAD_ENV: str(MAX_UPLOAD), webapp.MAX_PIXELS_ENV: str(MAX_PIXELS),
           webapp.ENDPOINT_URL_ENV: ""}
    with webapp.gunicorn_server("app:app", cwd=ROOT, env=env) as server:
        yield HttpClient(server.url)
        assert server.process.poll() is None, f"gunicorn died during the tests:\n{server.log_tail()}"


@pytest.fixture(params=["flask", "gunicorn"])
def client(request):
    return request.getfixturevalue(f"{request.param}_client")


def test_health(client, tiny_model_path):
    answer = client.request("GET", "/health")
    assert answer.status == 200
    health = answer.json()
    assert health["status"] == "ok" and health["predictions"] == "local"
    assert health["model"].endswith(tiny_model_path.name)
    assert health["input_size"] == [128, 256]
    assert health["samples"] == 2
    assert (health["max_upload_bytes"], health["max_pixels"]) == (MAX_UPLOAD, MAX_PIXELS)


def test_page_offers_exactly_the_val_samples(client, small_dataset):
    answer = client.request("GET", "/")
    assert answer.status == 200 and answer.content_type.startswith("text/html")
    assert Page(answer.text).options == [frame.stem for frame in cityscapes.list_frames(small_dataset, "val")]


@pytest.mark.parametrize("how", ["form", "url"])
def test_sample_result_shows_the_mask_of_predict_bytes(client, predictor, small_dataset, how):
    frame = cityscapes.list_frames(small_dataset, "val")[1]
    expected = predictor.predict_bytes(frame.image_path.read_bytes())
    if how == "form":
        answer = client.request("POST", "/predict", *multipart(fields={"sample": frame.stem}))
    else:
        answer = client.request("GET", f"/sample/{frame.stem}")
    assert answer.status == 200, answer.body[:500]
    page = Page(answer.text)
    # 64x128 is under the display width: the pictures are the full-size arrays
    np.testing.assert_array_equal(page.images["input-image"], expected.image)
    np.testing.assert_array_equal(page.images["mask-image"], labels.CATEGORY_PALETTE[expected.categories])
    assert page.images["overlay-image"].shape == expected.image.shape
    counts = np.bincount(expected.categories.ravel(), minlength=labels.NUM_CATEGORIES)
    assert page.legend == {name: counts[i] / counts.sum() for i, name in enumerate(labels.CATEGORY_NAMES)}


def test_result_pictures_are_scaled_down_for_display(tiny_model_path, small_dataset, rgb, predictor):
    app = webapp.create_app({"MODEL_PATH": tiny_model_path, "SAMPLES_ROOT": small_dataset, "DISPLAY_WIDTH": 64,
                             "ENDPOINT_URL": None})
    body, content_type = multipart(files={"image": ("scene.png", encode(Image.fromarray(rgb)))})
    page = Page(FlaskClient(app).request("POST", "/predict", body, content_type).text)
    assert {name: image.shape[:2] for name, image in page.images.items()} == {
        "input-image": (32, 64), "mask-image": (32, 64), "overlay-image": (32, 64)}
    small = np.asarray(Image.fromarray(rgb).resize((64, 32), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(page.images["input-image"], small)
    # the overlay is blended on the pictures shown, not on the full-size image
    np.testing.assert_array_equal(page.images["overlay-image"], viz.overlay(small, page.images["mask-image"]))
    # the shares are still counted on the full-size mask
    expected = predictor.predict_array(rgb)
    counts = np.bincount(expected.ravel(), minlength=labels.NUM_CATEGORIES)
    assert list(page.legend.values()) == list(counts / expected.size)


@pytest.mark.parametrize("fmt, options", [("PNG", {}), ("JPEG", {"quality": 80})], ids=["png", "jpeg"])
@pytest.mark.parametrize("as_multipart", [False, True], ids=["raw", "multipart"])
def test_upload_gives_the_mask_of_predict_bytes(client, predictor, rgb, fmt, options, as_multipart):
    data = encode(Image.fromarray(rgb), fmt, **options)
    check_prediction(post_image(client, data, as_multipart), predictor.predict_bytes(data).categories)


def _modes(rgb: np.ndarray) -> dict[str, tuple[Image.Image, np.ndarray]]:
    """{mode: (an image in that mode, the RGB image the model must see)}, the RGB built without Pillow's convert."""
    alpha = np.arange(rgb.shape[0] * rgb.shape[1], dtype=np.uint8).reshape(rgb.shape[:2])
    grey = rgb[..., 1]
    palette = np.random.default_rng(0).integers(0, 256, (256, 3), dtype=np.uint8)
    indices = rgb[..., 0]
    paletted = Image.fromarray(indices, "P")
    paletted.putpalette(palette.ravel().tolist())
    return {
        "RGBA": (Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), rgb),
        "L": (Image.fromarray(grey, "L"), np.repeat(grey[..., None], 3, axis=2)),
        "P": (paletted, palette[indices]),
        # 16-bit grey g * 257 scales back to exactly g in 8 bits
        "I;16": (Image.fromarray(grey.astype(np.uint16) * 257), np.repeat(grey[..., None], 3, axis=2)),
    }


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "I;16"])
def test_other_modes_are_converted_not_refused(client, predictor, rgb, mode):
    image, expected_rgb = _modes(rgb)[mode]
    data = encode(image)
    with Image.open(io.BytesIO(data)) as written:
        assert written.mode == mode
    check_prediction(post_image(client, data), predictor.predict_array(expected_rgb))


def test_shares_sum_to_one_and_are_the_mask_counts(client, rgb):
    result = post_image(client, encode(Image.fromarray(rgb))).json()
    mask = predict.decode_mask_png(result["mask_png"])
    counts = np.bincount(mask.ravel(), minlength=labels.NUM_CATEGORIES)
    assert sum(result["shares"].values()) == pytest.approx(1.0, abs=1e-12)
    assert result["shares"] == {name: counts[i] / mask.size for i, name in enumerate(labels.CATEGORY_NAMES)}
    assert sum(share > 0 for share in result["shares"].values()) >= 2, "a mask of one category tests little"


def test_blend_half_is_viz_overlay_at_one_half_for_every_pair_of_values():
    a, b = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    image = np.repeat(a[..., None], 3, axis=2)
    mask_rgb = np.repeat(b[..., None], 3, axis=2)
    blended = webapp.blend_half(image, mask_rgb)
    np.testing.assert_array_equal(blended, viz.overlay(image, mask_rgb, 0.5))
    # by hand: halves round to the even neighbour, as np.round does
    by_hand = {(0, 1): 0, (1, 2): 2, (2, 3): 2, (3, 4): 4, (254, 255): 254, (255, 255): 255, (10, 20): 15}
    blended = {(x, y): webapp.blend_half(np.full((1, 1, 3), x, np.uint8), np.full((1, 1, 3), y, np.uint8))
               for x, y in by_hand}
    assert {pair: int(pixel[0, 0, 0]) for pair, pixel in blended.items()} == by_hand


def test_overlay_is_added_on_request(client, predictor, rgb):
    data = encode(Image.fromarray(rgb))
    answer = client.request("POST", "/api/predict?overlay=1", data, "application/octet-stream").json()
    expected = predictor.predict_bytes(data).overlay()
    np.testing.assert_array_equal(decode_png(base64.b64decode(answer["overlay_png"])), expected)
    assert "overlay_png" not in post_image(client, data).json()


def _bad_requests(rgb: np.ndarray, small_dataset: Path) -> dict[str, tuple[str, str, bytes, str | None, int, str]]:
    """{case: (method, path, body, content type, expected status, words the message must contain)}."""
    png = encode(Image.fromarray(rgb))
    big = np.zeros((400, 400, 3), np.uint8)  # 160,000 pixels > MAX_PIXELS
    noise = np.random.default_rng(1).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    raw = "application/octet-stream"
    return {
        "not an image": ("POST", "/api/predict", b"just some text, not a picture", raw, 400, "not an image"),
        "empty": ("POST", "/api/predict", b"", raw, 400, "empty"),
        "truncated PNG": ("POST", "/api/predict", png[: len(png) // 2], raw, 400, "truncated"),
        "too many pixels": ("POST", "/api/predict", encode(Image.fromarray(big)), raw, 413, "160,000 pixels"),
        "header claims huge": ("POST", "/api/predict", png_claiming(100_000, 100_000), raw, 413, "too many pixels"),
        "upload too large": ("POST", "/api/predict", encode(Image.fromarray(noise)), raw, 413, "larger than"),
        "upload far too large": ("POST", "/api/predict", bytes(24 << 20), raw, 413, "larger than"),
        "multipart too large": ("POST", "/predict",
                                *multipart(files={"image": ("n.png", encode(Image.fromarray(noise)))}), 413,
                                "larger than"),
        "GIF": ("POST", "/api/predict", encode(Image.fromarray(rgb).convert("P"), "GIF"), raw, 415, "GIF"),
        "non-image in form": ("POST", "/predict", *multipart(files={"image": ("notes.png", b"a list")}), 400,
                              "not an image"),
        "multipart without image": ("POST", "/api/predict", *multipart(fields={"photo": "x"}), 400, "'image'"),
        "unknown sample": ("GET", "/sample/nowhere_000000_000019", None, None, 404, "no sample"),
        "unknown sample in form": ("POST", "/predict", *multipart(fields={"sample": "nowhere"}), 404, "no sample"),
        "path in form": ("POST", "/predict", *multipart(fields={"sample": "../x"}), 404, "no sample"),
        "path to a real file": ("POST", "/predict",
                                *multipart(fields={"sample": str(cityscapes.list_frames(small_dataset, "val")[0]
                                                                 .image_path)}), 404, "no sample"),
        "dots in URL": ("GET", "/sample/..%2F..%2Fetc%2Fpasswd", None, None, 404, ""),
        "form with nothing": ("POST", "/predict", *multipart(fields={}), 400, "choose a sample"),
        # a field over Flask's MAX_FORM_MEMORY_SIZE (500,000 bytes) in a body under the upload limit
        "form field too large": ("POST", "/predict", *multipart(fields={"sample": "a" * 600_000}), 413,
                                 "form field is larger than the 500,000 bytes"),
        "wrong method": ("GET", "/api/predict", None, None, 405, ""),
    }


BAD_CASES = ["not an image", "empty", "truncated PNG", "too many pixels", "header claims huge", "upload too large",
             "upload far too large", "multipart too large", "GIF", "non-image in form", "multipart without image",
             "unknown sample", "unknown sample in form", "path in form", "path to a real file", "dots in URL",
             "form with nothing", "form field too large", "wrong method"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(client, predictor, rgb, small_dataset, case):
    method, path, body, content_type, status, words = _bad_requests(rgb, small_dataset)[case]
    if case == "upload too large":
        assert len(body) > MAX_UPLOAD
    if case == "form field too large":
        assert len(body) < MAX_UPLOAD
    answer = client.request(method, path, body, content_type)
    assert answer.status == status, answer.body[:300]
    if answer.content_type.startswith("application/json"):
        message = answer.json()["error"]
    else:
        page = Page(answer.text)
        message = page.error or ""
        assert page.options, "the error page still offers the forms"
    assert words.lower() in message.lower()
    if "too large" in case and case != "form field too large":
        assert f"larger than the {MAX_UPLOAD:,} bytes" in message
    if status == 405:
        assert sorted(answer.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]  # the methods it does allow
    good = encode(Image.fromarray(rgb))
    check_prediction(post_image(client, good), predictor.predict_bytes(good).categories)


def test_importing_the_app_loads_no_tensorflow(tiny_model_path, small_dataset):
    """``import app`` (what gunicorn does in each worker) stays cheap: the model is loaded on the first request."""
    code = "import sys, app; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    env = {"SEGLIB_MODEL": str(tiny_model_path), "CITYSCAPES_DATASET": str(small_dataset), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_unknown_settings_and_bad_environment_are_refused(monkeypatch, small_dataset):
    with pytest.raises(ValueError, match="MAX_UPLOADS"):
        webapp.create_app({"MAX_UPLOADS": 1, "SAMPLES_ROOT": small_dataset})
    monkeypatch.setenv(webapp.MAX_UPLOAD_ENV, "16MB")
    with pytest.raises(ValueError, match=webapp.MAX_UPLOAD_ENV):
        webapp.create_app({"SAMPLES_ROOT": small_dataset})


def test_markup_in_a_file_name_or_sample_id_is_shown_as_text(flask_client, rgb):
    name = "<script>alert(1)</script>.png"
    body, content_type = multipart(files={"image": (name, encode(Image.fromarray(rgb)))})
    answer = flask_client.request("POST", "/predict", body, content_type)
    assert answer.status == 200
    assert "<script>" not in answer.text
    assert "<h2>Upload: &lt;script&gt;alert(1)&lt;/script&gt;.png</h2>" in answer.text
    sample_id = "<img src=x onerror=alert(1)>"
    for method, path, body in [("GET", "/sample/" + urllib.parse.quote(sample_id), None),
                               ("POST", "/predict", multipart(fields={"sample": sample_id}))]:
        answer = flask_client.request(method, path, *(body or (None, None)))
        assert answer.status == 404
        assert "<img src=x" not in answer.text and "&lt;img src=x onerror=alert(1)&gt;" in answer.text
        assert sample_id in Page(answer.text).error  # shown, as text


def test_missing_model_is_a_503_that_says_so(small_dataset, tmp_path, rgb, caplog):
    app = webapp.create_app({"MODEL_PATH": tmp_path / "absent.keras", "SAMPLES_ROOT": small_dataset,
                             "ENDPOINT_URL": None})
    client = FlaskClient(app)
    with caplog.at_level(logging.ERROR):
        answer = client.request("GET", "/health")
    # the public answer says so without the server's path; the log names it for the operator
    assert answer.status == 503 and "no model loaded" in answer.json()["error"]
    assert "absent.keras" not in answer.text and str(tmp_path) not in answer.text
    assert "absent.keras" in caplog.text
    assert post_image(client, encode(Image.fromarray(rgb))).status == 503


# --- App Service mode: the Azure ML endpoint ------------------------------------------------------------------

class Gate:
    """Holds the requests to the fake endpoint's /gate until ``release`` is set, counting how many wait at once."""

    lock = threading.Lock()
    release = threading.Event()
    inside = peak = 0

    @classmethod
    def reset(cls) -> None:
        cls.release.clear()
        cls.inside = cls.peak = 0

    @classmethod
    def wait(cls) -> None:
        with cls.lock:
            cls.inside += 1
            cls.peak = max(cls.peak, cls.inside)
        cls.release.wait(timeout=60)
        with cls.lock:
            cls.inside -= 1


class FakeEndpoint(JsonHandler):
    """Answers as an Azure ML endpoint running score.py would, one behaviour per path; /score predicts for real."""

    predictor: predict.Predictor = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/gate":
            Gate.wait()
            return self.answer(200, self.predictor.predict_bytes(body).as_json())
        if self.path == "/echo-key":  # a broken server that quotes the request's headers in its error, key included
            return self.answer(500, {"error": "x" * 283 + " " + str(self.headers["Authorization"])})
        if self.path == "/score":
            if self.headers["Authorization"] != f"Bearer {KEY}":
                return self.answer(401, {"error": "invalid key"})
            if self.headers["Content-Type"] != "application/octet-stream":
                return self.answer(415, {"error": "send application/octet-stream"})
            try:
                return self.answer(200, self.predictor.predict_bytes(body).as_json())
            except predict.ImageError as error:
                return self.answer(error.status, {"error": str(error)})
        answers = {"/refuses": (400, {"error": "the endpoint says: bad image"}), "/crashes": (500, "boom"),
                   "/missing": (404, "not found"), "/overloaded": (429, {"message": "too many requests"}),
                   "/scoring-timeout": (408, "request timed out"), "/garbage": (200, {"mask": "nope"})}
        self.answer(*answers[self.path], {"Retry-After": "7"} if self.path == "/overloaded" else {})


@pytest.fixture(scope="module")
def endpoint(predictor):
    FakeEndpoint.predictor = predictor
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_socket():
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/score"


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/score"  # nothing listens there once the probe is closed


def endpoint_client(url: str, small_dataset, timeout: float = 5.0, **settings) -> FlaskClient:
    return FlaskClient(webapp.create_app({"SAMPLES_ROOT": small_dataset, "ENDPOINT_URL": url, "ENDPOINT_KEY": KEY,
                                          "ENDPOINT_TIMEOUT": timeout, "MODEL_PATH": "/no/model/needed",
                                          **settings}))


def test_endpoint_predict_gives_the_endpoints_mask(endpoint, predictor, rgb):
    data = encode(Image.fromarray(rgb))
    mask = webapp.endpoint_predict(f"{endpoint}/score", KEY, data, timeout=30)
    np.testing.assert_array_equal(mask, predictor.predict_bytes(data).categories)


def test_app_service_mode_predicts_on_the_endpoint(endpoint, predictor, rgb, small_dataset, caplog):
    client = endpoint_client(f"{endpoint}/score", small_dataset, 30)
    health = client.request("GET", "/health").json()
    assert health["predictions"] == "endpoint" and health["endpoint"] == f"{endpoint}/score"
    assert KEY not in json.dumps(health)
    data = encode(Image.fromarray(rgb))
    check_prediction(post_image(client, data), predictor.predict_bytes(data).categories)
    frame = cityscapes.list_frames(small_dataset, "val")[0]
    page = Page(client.request("GET", f"/sample/{frame.stem}").text)
    expected = predictor.predict_bytes(frame.image_path.read_bytes()).categories
    np.testing.assert_array_equal(page.images["mask-image"], labels.CATEGORY_PALETTE[expected])
    assert KEY not in caplog.text


@pytest.mark.parametrize("path, status, words", [
    ("/refuses", 400, "the endpoint says: bad image"),
    ("/overloaded", 429, "too many requests"),
    ("/crashes", 502, "failed (500): boom"),
    ("/missing", 502, "no prediction endpoint"),
    ("/scoring-timeout", 504, "timed out (408)"),
    ("/garbage", 502, "not a prediction"),
])
def test_endpoint_answers_are_mapped(endpoint, rgb, small_dataset, caplog, path, status, words):
    client = endpoint_client(f"{endpoint}{path}", small_dataset)
    answer = post_image(client, encode(Image.fromarray(rgb)))
    assert answer.status == status
    assert words in answer.json()["error"]
    assert KEY not in answer.text and KEY not in caplog.text
    # the endpoint's Retry-After goes with the 429 it sent, to the client who should wait
    assert answer.headers.get("Retry-After") == ("7" if path == "/overloaded" else None)


def test_wrong_key_is_a_502_naming_the_setting_not_the_key(endpoint, rgb, small_dataset, caplog):
    app = webapp.create_app({"SAMPLES_ROOT": small_dataset, "ENDPOINT_URL": f"{endpoint}/score",
                             "ENDPOINT_KEY": "wrong-" + KEY})
    answer = post_image(FlaskClient(app), encode(Image.fromarray(rgb)))
    assert answer.status == 502 and webapp.ENDPOINT_KEY_ENV in answer.json()["error"]
    assert KEY not in answer.text and KEY not in caplog.text


def test_unreachable_endpoint_is_a_502_and_the_app_keeps_serving(rgb, small_dataset, caplog):
    url = closed_port_url()
    client = endpoint_client(url, small_dataset)
    with caplog.at_level(logging.WARNING):
        answer = post_image(client, encode(Image.fromarray(rgb)))
    assert answer.status == 502
    assert f"{url} is unreachable" in answer.json()["error"]
    assert KEY not in answer.text and KEY not in caplog.text and "unreachable" in caplog.text
    assert client.request("GET", "/health").status == 200
    assert post_image(client, b"not an image").status == 400  # refused here, before any round trip


def test_silent_endpoint_is_a_504(silent_socket, rgb, small_dataset):
    answer = post_image(endpoint_client(silent_socket, small_dataset, timeout=1.0), encode(Image.fromarray(rgb)))
    assert answer.status == 504 and "did not answer within 1 s" in answer.json()["error"]


def test_endpoint_address_in_messages_drops_user_info_and_query():
    with pytest.raises(webapp.EndpointError) as caught:
        webapp.endpoint_predict(closed_port_url().replace("http://", f"http://user:{KEY}@") + f"?code={KEY}", None,
                                b"x", timeout=5)
    assert KEY not in str(caught.value) and caught.value.status == 502


@pytest.mark.parametrize("ending", ["\r", "\n"], ids=["CR", "LF"])
def test_a_key_pasted_with_a_line_break_is_stripped(endpoint, predictor, rgb, small_dataset, monkeypatch, ending):
    monkeypatch.setenv(webapp.ENDPOINT_KEY_ENV, KEY + ending)
    monkeypatch.setenv(webapp.ENDPOINT_URL_ENV, f" {endpoint}/score{ending}")
    client = FlaskClient(webapp.create_app({"SAMPLES_ROOT": small_dataset}))
    data = encode(Image.fromarray(rgb))
    check_prediction(post_image(client, data), predictor.predict_bytes(data).categories)


@pytest.mark.parametrize("ending", ["\r", "\n"], ids=["CR", "LF"])
def test_endpoint_predict_never_shows_a_key_that_cannot_be_sent(endpoint, rgb, ending):
    """http.client refuses the header with ValueError("Invalid header value b'Bearer <key>\\r'"): not shown."""
    with pytest.raises(webapp.EndpointError) as caught:
        webapp.endpoint_predict(f"{endpoint}/score", KEY + ending, encode(Image.fromarray(rgb)), timeout=5)
    assert caught.value.status == 502 and webapp.ENDPOINT_KEY_ENV in str(caught.value)
    assert KEY[:8] not in str(caught.value)


@pytest.mark.parametrize("setting, value", [
    ("ENDPOINT_KEY", KEY[:12] + "\r\n" + KEY[12:]),
    ("ENDPOINT_KEY", KEY[:12] + "\x00" + KEY[12:]),
    ("ENDPOINT_URL", "http://127.0.0.1:9/score?code=" + KEY[:12] + "\n" + KEY[12:]),
], ids=["CRLF in key", "NUL in key", "LF in URL"])
def test_control_characters_inside_a_setting_are_refused_at_startup(small_dataset, setting, value):
    with pytest.raises(ValueError) as caught:
        webapp.create_app({"SAMPLES_ROOT": small_dataset, "ENDPOINT_URL": "http://127.0.0.1:9/score", setting: value})
    message = str(caught.value)
    assert getattr(webapp, f"{setting}_ENV") in message and "control character" in message
    assert KEY[:8] not in message and KEY[12:20] not in message


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1:port/score", "has a port that is not a number"),
    ("http://127.0.0.1:99999/score", "has a port that is not a number"),
    ("ftp://example.org/score", "must start with https://"),
    ("127.0.0.1:8000/score", "must start with https://"),
    ("https:///score", "has no host name"),
])
def test_a_malformed_endpoint_url_is_refused_at_startup(small_dataset, monkeypatch, url, words):
    monkeypatch.setenv(webapp.ENDPOINT_URL_ENV, url)
    with pytest.raises(ValueError, match=f"{webapp.ENDPOINT_URL_ENV} {words}"):
        webapp.create_app({"SAMPLES_ROOT": small_dataset})


def test_an_error_quoting_the_key_is_scrubbed_before_it_is_cut(endpoint, rgb, small_dataset, caplog):
    """The endpoint's message is cut to 300 characters; a key straddling the cut must not survive in part."""
    with caplog.at_level(logging.WARNING):
        answer = post_image(endpoint_client(f"{endpoint}/echo-key", small_dataset), encode(Image.fromarray(rgb)))
    assert answer.status == 502
    message = answer.json()["error"]
    assert message.endswith("x" * 10 + " Bearer ***")  # the key was there, and is replaced
    for text in (answer.text, caplog.text):
        assert KEY[:8] not in text  # nor any longer prefix


def test_the_default_pixel_limit_is_two_cityscapes_frames(small_dataset, monkeypatch):
    """Two 1024x2048 frames (1024x4096) are decoded and sent on; one row more is refused before decoding."""
    monkeypatch.delenv(webapp.MAX_PIXELS_ENV, raising=False)
    client = endpoint_client(closed_port_url(), small_dataset)
    two_frames = post_image(client, encode(Image.new("RGB", (4096, 1024))))
    assert two_frames.status == 502 and "unreachable" in two_frames.json()["error"]
    more = post_image(client, encode(Image.new("RGB", (4096, 1025))))
    assert more.status == 413 and f"{1025 * 4096:,} pixels" in more.json()["error"]


@pytest.mark.parametrize("limit", [None, 1], ids=["default", "one"])
def test_concurrent_predictions_per_worker_are_bounded(endpoint, predictor, rgb, small_dataset, monkeypatch, limit):
    """Four threads post at once; the endpoint holds each request until released, and counts how many it holds:
    no more than the limit (the default 2) may be inside a prediction at the same time."""
    monkeypatch.delenv(webapp.MAX_PREDICTIONS_ENV, raising=False)
    settings = {} if limit is None else {"MAX_CONCURRENT_PREDICTIONS": limit}
    app = webapp.create_app({"SAMPLES_ROOT": small_dataset, "ENDPOINT_URL": f"{endpoint}/gate", "ENDPOINT_KEY": KEY,
                             "ENDPOINT_TIMEOUT": 60.0, **settings})
    expected_limit = limit or 2
    data = encode(Image.fromarray(rgb))
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(post_image(FlaskClient(app), data))) for _ in range(4)]
    Gate.reset()
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while Gate.inside < expected_limit and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # time for a request over the limit to arrive, were it let through
        peak = Gate.peak
    finally:
        Gate.release.set()
        for thread in threads:
            thread.join(timeout=120)
    assert peak == expected_limit
    expected = predictor.predict_bytes(data).categories
    assert len(answers) == 4
    for answer in answers:
        check_prediction(answer, expected)


def test_a_missing_dataset_gets_only_its_val_split_generated(tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.delenv(cityscapes.CITYSCAPES_ENV, raising=False)
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    monkeypatch.setenv("SEGLIB_PROFILE", "ci")
    app = webapp.create_app({"MODEL_PATH": tiny_model_path, "ENDPOINT_URL": None})
    profile = profiles.get_profile("ci")
    root = datasets.synthetic_root(profile.synthetic_size)
    assert root.is_relative_to(tmp_path)
    assert sorted(path.name for path in (root / "leftImg8bit").iterdir()) == ["val"]
    assert sorted(path.name for path in (root / "gtFine").iterdir()) == ["val"]
    # the ids a chapter sees: the generator names frame i of the split, whatever else is generated
    val_count = profile.synthetic_counts["val"]
    expected = sorted(synthetic.frame_for(root, "val", index).stem for index in range(val_count))
    assert Page(FlaskClient(app).request("GET", "/").text).options == expected[:webapp.MAX_SAMPLES]
    # a dataset that exists is read, not written again
    times = {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}
    webapp.create_app({"MODEL_PATH": tiny_model_path, "ENDPOINT_URL": None})
    assert {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()} == times


# --- gunicorn_server: ports, logs, file descriptors, orphans ------------------------------------------------

MINI_APP = '''def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode()]
'''


@pytest.fixture
def mini_app(tmp_path) -> Path:
    """A folder with ``mini.py``, a WSGI app that answers 200 everywhere (so /health): gunicorn starts it fast."""
    (tmp_path / "mini.py").write_text(MINI_APP)
    return tmp_path


def open_files() -> set[str]:
    """What this process's file descriptors point at (Linux)."""
    targets = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # the descriptor listdir itself used
    return targets


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_gunicorn_server_holds_no_log_descriptor_and_removes_its_log(mini_app):
    with webapp.gunicorn_server("mini:app", cwd=mini_app) as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert f"Listening at: http://127.0.0.1:{port} " in server.log_tail()  # the port gunicorn itself chose
        with urllib.request.urlopen(f"{server.url}/health", timeout=30) as answer:
            assert answer.read() == b"/health"
        assert server.log_path.is_file() and str(server.log_path) not in open_files()
    assert server.process.returncode == 0
    assert not server.log_path.exists()


def test_a_server_that_fails_to_start_keeps_its_log_and_says_where(mini_app, capsys):
    with pytest.raises(RuntimeError, match="No module named 'nowhere'"):
        with webapp.gunicorn_server("nowhere:app", cwd=mini_app, ready_timeout=60):
            pass
    found = re.search(r"gunicorn's log is kept at (\S+)", capsys.readouterr().err)
    assert found, "the log's path is printed"
    log = Path(found.group(1))
    try:
        assert "No module named 'nowhere'" in log.read_text()
    finally:
        log.unlink()


def process_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie nobody reaps counts as gone: it runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_gunicorn_dies_with_the_process_that_started_it(mini_app):
    """A parent killed by SIGKILL runs no cleanup; the server it started must still stop, workers included."""
    code = ("import sys, time\nfrom seglib import webapp\n"
            f"with webapp.gunicorn_server('mini:app', cwd={str(mini_app)!r}) as server:\n"
            "    print(server.process.pid, server.log_path, flush=True)\n"
            "    time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    pids, log = [], None
    try:
        pid, log = parent.stdout.readline().split()
        master = int(pid)
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        pids = [master, *map(int, children)]
        assert len(pids) == 2, "gunicorn's master and its one worker"
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 60
        while not all(map(process_gone, pids)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(map(process_gone, pids)), f"still running after their parent died: {pids}"
    finally:
        parent.kill()
        parent.wait()
        if pids and not process_gone(pids[0]):
            os.killpg(pids[0], signal.SIGKILL)  # the server's own session: only what this test started
        if log:
            Path(log).unlink(missing_ok=True)
