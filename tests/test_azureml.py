"""deploy/azureml/score.py in the server Azure ML itself runs (azureml-inference-server-http 1.5.1).

The code folder is laid out as Azure ML uploads it: the files the SDK's own ``.amlignore`` handling selects from
the repository root, copied to ``<app root>/<repository name>/``; the model as Azure ML mounts a model registered
from a folder: ``<tmp>/azureml-models/<name>/<version>/<folder>/model.keras``. Every mask is compared with
``seglib.predict.Predictor(tiny_model_path).predict_bytes(same bytes)`` computed here, in the test process.

1. in-process: the inference server's Flask app (``azureml_inference_server_http.server.entry.app``) and its test
   client: good uploads in every form, bad uploads with their 4xx, and a good request after each bad one;
2. a real ``azmlinfsrv`` subprocess on 127.0.0.1 (its host is hard-coded to 0.0.0.0, see ``_LAUNCHER``);
3. the web app, staged by ``deploy/appservice/stage.py`` and started as App Service starts it (gunicorn
   ``app:app``), predicting through that server: the same mask again.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglib import cityscapes, predict

REPO = Path(__file__).resolve().parents[1]
SCORE = Path("deploy") / "azureml" / "score.py"
MODEL_NAME, MODEL_VERSION = "street-scenes-unet", "1"
MAX_PIXELS = 20_000  # SEGLIB_MAX_PIXELS for the servers here: a 200x200 upload (40,000 px) is refused cheaply

# azmlinfsrv binds 0.0.0.0 and has no option to change it (azureml_inference_server_http.constants.DEFAULT_HOST,
# which amlserver copies at import). This runs the console script's own run() with that constant set to loopback.
# azure-ai-ml 1.35's schemas use marshmallow fields that marshmallow 4 deprecates: its warnings, not ours
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

_LAUNCHER = ("import sys, azureml_inference_server_http.constants as constants; constants.DEFAULT_HOST = '127.0.0.1'; "
             "from azureml_inference_server_http.amlserver import run; sys.argv[0] = 'azmlinfsrv'; run()")


# ---------------------------------------------------------------------------------------------------------
# Layout as Azure ML makes it
# ---------------------------------------------------------------------------------------------------------

def code_snapshot(app_root: Path) -> Path:
    """Copy the files the SDK would upload from the repository root (its .amlignore rules) under
    ``app_root/<repository name>``; returns that code folder."""
    from azure.ai.ml._utils._asset_utils import get_ignore_file, get_upload_files_from_folder

    code = app_root / REPO.name
    for local, remote in get_upload_files_from_folder(REPO, ignore_file=get_ignore_file(REPO)):
        (code / remote).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, code / remote)
    return code


def azure_model_dir(root: Path, model_path: Path) -> Path:
    """``root/azureml-models/<name>/<version>`` holding ``<name>/model.keras``, as for a model registered from a
    folder; returns the version folder (what AZUREML_MODEL_DIR names)."""
    version = root / "azureml-models" / MODEL_NAME / MODEL_VERSION
    (version / MODEL_NAME).mkdir(parents=True)
    shutil.copyfile(model_path, version / MODEL_NAME / "model.keras")
    return version


@pytest.fixture(scope="module")
def layout(tmp_path_factory, tiny_model_path):
    root = tmp_path_factory.mktemp("azureml")
    app_root = root / "var-azureml-app"
    return {"app_root": app_root, "code": code_snapshot(app_root), "model_dir": azure_model_dir(root, tiny_model_path)}


def test_code_upload_holds_seglib_and_the_scripts_only(layout):
    uploaded = sorted(str(path.relative_to(layout["code"])) for path in layout["code"].rglob("*") if path.is_file())
    library = sorted(str(path.relative_to(REPO)) for path in (REPO / "seglib").rglob("*")
                     if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc")
    assert sorted(set(uploaded) - set(library)) == ["data_scripts/train.py", str(SCORE)]
    assert set(library) <= set(uploaded)


def _sdk_upload(folder: Path) -> list[tuple[Path, str]]:
    """The SDK's own list (private helpers of azure-ai-ml, what create_or_update calls), as upload_files gives it."""
    from azure.ai.ml._utils._asset_utils import get_ignore_file, get_upload_files_from_folder

    pairs = get_upload_files_from_folder(folder, ignore_file=get_ignore_file(folder))
    return sorted(((Path(local), remote) for local, remote in pairs), key=lambda pair: pair[1])


def test_upload_files_lists_what_the_sdk_uploads_from_the_repository():
    upload = _load_deploy().upload_files(REPO)
    assert upload == _sdk_upload(REPO)
    remotes = [remote for _, remote in upload]
    assert {"seglib/predict.py", str(SCORE), "data_scripts/train.py"} <= set(remotes)
    assert not any(remote.startswith(("book/", "tests/", ".git/")) or remote.endswith(".pyc") for remote in remotes)
    assert all(local == (REPO / remote).resolve() for local, remote in upload)


def test_upload_files_follows_the_sdks_ignore_rules(tmp_path):
    deploy = _load_deploy()
    for name in ("a.log", "keep.log", "top.txt", "sub/top.txt", "sub/a.log", "build/x.bin", "sub/build/y.bin",
                 "src/m.py", "src/__pycache__/m.pyc", "docs/x/y/z.md", "docs/z.md", "docs/readme.txt", "[x].txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".amlignore").write_text("# a comment, then a blank line\n\n*.log\n!keep.log\n/top.txt\nbuild/\n"
                                         "__pycache__/\ndocs/**/*.md\n\\[x].txt\n")
    upload = deploy.upload_files(tmp_path)
    assert [remote for _, remote in upload] == [".amlignore", "docs/readme.txt", "keep.log", "src/m.py", "sub/top.txt"]
    assert upload == _sdk_upload(tmp_path)
    # the top-level files are re-included, files below a left-out folder too (unlike git), the last match decides
    for rules in ("/*\n!/src/\n/src/__pycache__/\n", "*\n!*.py\n", "**/\n", "a/**\n!**/*.md\n**/[!a]*.bin\n",
                  "sub\n?.log\n[a-k]*.*\n[^k]*\n", "/docs/*/\n*/\n"):
        (tmp_path / ".amlignore").write_text(rules)
        assert deploy.upload_files(tmp_path) == _sdk_upload(tmp_path), rules
    (tmp_path / ".amlignore").unlink()
    (tmp_path / ".gitignore").write_text("*.txt\n")  # read only where there is no .amlignore
    assert deploy.upload_files(tmp_path) == _sdk_upload(tmp_path)
    assert not any(remote.endswith(".txt") for _, remote in deploy.upload_files(tmp_path))
    (tmp_path / ".gitignore").unlink()
    assert len(deploy.upload_files(tmp_path)) == 13 and deploy.upload_files(tmp_path) == _sdk_upload(tmp_path)


def test_find_model_needs_exactly_one_keras_file(layout, tmp_path):
    score = _load_score()
    assert score.find_model(layout["model_dir"]) == layout["model_dir"] / MODEL_NAME / "model.keras"
    (tmp_path / "a").mkdir()
    with pytest.raises(FileNotFoundError, match="found no .keras file"):
        score.find_model(tmp_path)
    for name in ("a/best.keras", "final.keras"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"found a/best.keras, final.keras"):
        score.find_model(tmp_path)


def _load_score():
    import importlib.util

    spec = importlib.util.spec_from_file_location("score_under_test", REPO / SCORE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_deploy():
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy_under_test", REPO / "deploy" / "azureml" / "deploy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks the module up there
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------------
# Uploads and the reference masks
# ---------------------------------------------------------------------------------------------------------

def _encode(array: np.ndarray, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=image_format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def uploads(small_dataset):
    png = cityscapes.list_frames(small_dataset, "val")[0].image_path.read_bytes()
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    gif = _encode(rgb, "GIF")
    big = _encode(np.zeros((200, 200, 3), np.uint8), "PNG")
    return {"png": png, "jpeg": _encode(rgb, "JPEG", quality=90), "rgba": _encode(rgba, "PNG"), "gif": gif,
            "big": big, "truncated": png[: len(png) // 2], "text": b"hello, this is not an image"}


@pytest.fixture(scope="module")
def reference(tiny_model_path):
    return predict.Predictor(tiny_model_path)


def _mask(answer: dict) -> np.ndarray:
    return predict.decode_mask_png(answer["mask_png"])


def _json_body(data: bytes) -> bytes:
    return json.dumps({"image": base64.b64encode(data).decode("ascii")}).encode()


# (name, body, content type, expected status, words the message must hold)
BAD_REQUESTS = [
    ("not an image", lambda u: u["text"], "application/octet-stream", 400, "not an image"),
    ("truncated", lambda u: u["truncated"], "image/png", 400, "truncated"),
    ("GIF", lambda u: u["gif"], "application/octet-stream", 415, "unsupported image format GIF"),
    ("too many pixels", lambda u: u["big"], "image/png", 413, "40,000 pixels"),
    ("empty", lambda u: b"", "application/octet-stream", 400, "empty"),
    ("malformed JSON", lambda u: b'{"image": "abc', "application/json", 400, "not valid JSON"),
    ("JSON without image", lambda u: b'{"picture": "abc"}', "application/json", 400, '"image"'),
    ("bad base64", lambda u: b'{"image": "not base64!"}', "application/json", 400, "not valid base64"),
    ("base64 of text", lambda u: _json_body(u["text"]), "application/json", 400, "not an image"),
]


# ---------------------------------------------------------------------------------------------------------
# 1. In-process: the inference server's Flask app
# ---------------------------------------------------------------------------------------------------------

def _purge_server_modules() -> None:
    for name in [name for name in sys.modules if name.startswith("azureml_inference_server_http.server")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def client(layout):
    """The Flask app azmlinfsrv serves, built in this process. The server reads its settings from the environment
    when its modules are imported, so they are imported afresh here; it also replaces print() and reconfigures
    logging (disabling the loggers that exist, e.g. the web app's): both are put back after."""
    saved_print, saved_path = builtins.print, list(sys.path)
    saved_logging = _logging_state()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AML_APP_ROOT", str(layout["app_root"]))
        patch.setenv("AZUREML_ENTRY_SCRIPT", f"{REPO.name}/{SCORE.as_posix()}")
        patch.setenv("AZUREML_MODEL_DIR", str(layout["model_dir"]))
        patch.setenv("SEGLIB_MAX_PIXELS", str(MAX_PIXELS))
        _purge_server_modules()
        try:
            from azureml_inference_server_http.server.entry import app

            yield app.test_client()
        finally:
            builtins.print, sys.path[:] = saved_print, saved_path
            _restore_logging(saved_logging)
            _purge_server_modules()


def _logging_state() -> dict:
    loggers = [logging.getLogger()] + [logger for logger in logging.root.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    return {logger: (logger.disabled, logger.propagate, logger.level, list(logger.handlers)) for logger in loggers}


def _restore_logging(state: dict) -> None:
    for logger, (disabled, propagate, level, handlers) in state.items():
        logger.disabled, logger.propagate, logger.handlers = disabled, propagate, handlers
        logger.setLevel(level)


def test_health_route(client):
    answer = client.get("/")
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "Healthy"


@pytest.mark.parametrize("content_type", ["application/octet-stream", "image/png"])
def test_raw_png_gives_the_predictor_mask(client, uploads, reference, content_type):
    answer = client.post("/score", data=uploads["png"], content_type=content_type)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    expected = reference.predict_bytes(uploads["png"]).categories
    body = answer.get_json()
    np.testing.assert_array_equal(_mask(body), expected)
    assert (body["height"], body["width"]) == expected.shape
    counts = np.bincount(expected.ravel(), minlength=len(body["categories"]))
    assert list(body["shares"].values()) == pytest.approx(list(counts / expected.size))


def test_base64_json_gives_the_same_mask(client, uploads, reference):
    answer = client.post("/score", data=_json_body(uploads["png"]), content_type="application/json")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    np.testing.assert_array_equal(_mask(answer.get_json()), reference.predict_bytes(uploads["png"]).categories)


def test_line_wrapped_base64_and_data_urls_are_accepted(client, uploads, reference):
    encoded = base64.encodebytes(uploads["png"]).decode()  # 76-character lines, as `base64 file` writes
    assert "\n" in encoded.strip()
    expected = reference.predict_bytes(uploads["png"]).categories
    for text in (encoded, "data:image/png;base64," + base64.b64encode(uploads["png"]).decode()):
        answer = client.post("/score", data=json.dumps({"image": text}), content_type="application/json")
        assert answer.status_code == 200, answer.get_data(as_text=True)
        np.testing.assert_array_equal(_mask(answer.get_json()), expected)


def test_jpeg_and_rgba_are_converted(client, uploads, reference):
    jpeg = client.post("/score", data=uploads["jpeg"], content_type="image/jpeg")
    np.testing.assert_array_equal(_mask(jpeg.get_json()), reference.predict_bytes(uploads["jpeg"]).categories)
    rgba = client.post("/score", data=uploads["rgba"], content_type="image/png")  # alpha dropped: the RGB's mask
    np.testing.assert_array_equal(_mask(rgba.get_json()), reference.predict_bytes(uploads["png"]).categories)


def test_overlay_on_request(client, uploads, reference):
    answer = client.post("/score?overlay=1", data=uploads["png"], content_type="image/png").get_json()
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["overlay_png"]))))
    assert overlay.shape == (answer["height"], answer["width"], 3)
    assert "overlay_png" not in client.post("/score", data=uploads["png"], content_type="image/png").get_json()


@pytest.mark.parametrize("name, body, content_type, status, words", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_upload_gets_its_status_and_the_server_goes_on(client, uploads, reference, name, body, content_type,
                                                           status, words):
    answer = client.post("/score", data=body(uploads), content_type=content_type)
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert words in answer.get_json()["error"]
    good = client.post("/score", data=uploads["png"], content_type="image/png")
    assert good.status_code == 200
    np.testing.assert_array_equal(_mask(good.get_json()), reference.predict_bytes(uploads["png"]).categories)


def test_get_score_is_refused_with_a_hint(client):
    answer = client.get("/score")
    assert answer.status_code == 405 and "POST an image" in answer.get_json()["error"]


# ---------------------------------------------------------------------------------------------------------
# 2. A real azmlinfsrv on loopback
# ---------------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the listening TCP sockets on ``port`` (Linux /proc/net/tcp, IPv4)."""
    addresses = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, local_port = local.split(":")
        if int(local_port, 16) == port and state == "0A":
            addresses.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return addresses


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"azmlinfsrv exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError(f"azmlinfsrv did not answer {url} within {timeout:g} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def azmlinfsrv(layout, log: Path):
    port = _free_port()
    command = [sys.executable, "-c", _LAUNCHER, "--entry_script", str(layout["code"] / SCORE),
               "--model_dir", str(layout["model_dir"]), "--port", str(port)]
    environment = {**os.environ, "AML_APP_ROOT": str(layout["app_root"]), "SEGLIB_MAX_PIXELS": str(MAX_PIXELS),
                   "NO_ALBUMENTATIONS_UPDATE": "1"}
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=layout["app_root"], env=environment, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/", process, log)
        yield f"http://127.0.0.1:{port}", port
    finally:
        if process.poll() is None:
            process.terminate()  # gunicorn's master stops its worker
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: only what this test started
                process.wait()


@pytest.fixture(scope="module")
def server(layout, tmp_path_factory):
    log = tmp_path_factory.mktemp("azmlinfsrv") / "server.log"
    with azmlinfsrv(layout, log) as (url, port):
        yield {"url": url, "port": port, "log": log, "code": layout["code"]}


def _post(url: str, data: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_azmlinfsrv_on_loopback_scores_like_the_predictor(server, uploads, reference):
    assert _listening_addresses(server["port"]) == {"127.0.0.1"}
    status, answer = _post(f"{server['url']}/score", uploads["png"], "application/octet-stream")
    assert status == 200, answer
    np.testing.assert_array_equal(_mask(answer), reference.predict_bytes(uploads["png"]).categories)
    status, answer = _post(f"{server['url']}/score", uploads["gif"], "application/octet-stream")
    assert status == 415 and "GIF" in answer["error"]
    # score.py put the uploaded code folder first on sys.path: the server ran the snapshot's seglib, not this one
    assert f"seglib from {layout_seglib(server)}" in server["log"].read_text()


def layout_seglib(server) -> Path:
    return Path(os.path.realpath(server["code"])) / "seglib"


# ---------------------------------------------------------------------------------------------------------
# 3. The web app in App Service mode, predicting through that server
# ---------------------------------------------------------------------------------------------------------

def _stage_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("stage_under_test", REPO / "deploy" / "appservice" / "stage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_web_app_through_the_endpoint_gives_the_same_mask(server, uploads, reference, small_dataset, tmp_path):
    webapp = pytest.importorskip("seglib.webapp", reason="the web app (seglib/webapp) is not in this checkout")
    folder = _stage_script().stage(tmp_path / "wwwroot")  # endpoint mode: no model in the folder
    environment = {"SEGLIB_ENDPOINT_URL": f"{server['url']}/score", "SEGLIB_ENDPOINT_KEY": "",
                   "CITYSCAPES_DATASET": str(small_dataset), "NO_ALBUMENTATIONS_UPDATE": "1"}
    with webapp.gunicorn_server("app:app", cwd=folder, env=environment, ready_timeout=120) as app:
        with urllib.request.urlopen(f"{app.url}/health", timeout=30) as answer:
            assert json.loads(answer.read())["predictions"] == "endpoint"
        status, answer = _post(f"{app.url}/api/predict", uploads["png"], "application/octet-stream")
    assert status == 200, answer
    expected = reference.predict_bytes(uploads["png"]).categories
    np.testing.assert_array_equal(_mask(answer), expected)  # notebook (Predictor) == endpoint == web app
