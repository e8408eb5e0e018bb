"""Tests of data_scripts/prepare_cityscapes.py, seglib.prepare and data_scripts/download_cityscapes.py.

Every dataset here is a tiny hand-made one in ``tmp_path`` (32x64 frames drawn from polygons). Nothing touches
the network: the download tests replace the script's network functions (or ``requests.Session``).
"""

from __future__ import annotations

import importlib.util
import inspect
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglib import labels, masks, prepare
from seglib.cityscapes import Frame

REPO = Path(__file__).resolve().parents[1]
H, W = 32, 64
ROAD = {"label": "road", "polygon": [[0, 16], [63, 16], [63, 31], [0, 31]]}   # rows 16..31, all columns
CAR = {"label": "car", "polygon": [[10, 4], [19, 4], [19, 11], [10, 11]]}     # rows 4..11, cols 10..19
SKY = {"label": "sky", "polygon": [[40, 0], [63, 0], [63, 7], [40, 7]]}       # rows 0..7, cols 40..63


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "data_scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


prepare_script = _load_script("prepare_cityscapes")
download_script = _load_script("download_cityscapes")


# ---------------------------------------------------------------------------------------------------------
# A tiny Cityscapes-layout dataset
# ---------------------------------------------------------------------------------------------------------

def write_frame(root: Path, split: str, city: str, index: int, objects: list[dict],
                image_size: tuple[int, int] = (H, W), seed: int = 0) -> Frame:
    frame = Frame(root, split, city, 0, index)
    frame.image_path.parent.mkdir(parents=True, exist_ok=True)
    frame.gt_path("labelIds").parent.mkdir(parents=True, exist_ok=True)
    polygons = {"imgHeight": H, "imgWidth": W, "objects": objects}
    masks.write_polygons(frame.gt_path("polygons"), polygons)
    masks.write_label_ids(frame.gt_path("labelIds"), masks.polygons_to_label_ids(polygons))
    pixels = np.random.default_rng(seed).integers(0, 256, (*image_size, 3), dtype=np.uint8)
    Image.fromarray(pixels, mode="RGB").save(frame.image_path)
    return frame


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "cityscapes"
    write_frame(root, "train", "aachen", 19, [ROAD, CAR], seed=1)
    write_frame(root, "train", "bochum", 7, [ROAD, SKY], seed=2)
    write_frame(root, "val", "frankfurt", 1, [SKY, CAR], seed=3)
    return root


def all_files(root: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}


def read_grey(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "L"
        return np.asarray(image)


# ---------------------------------------------------------------------------------------------------------
# Resizing
# ---------------------------------------------------------------------------------------------------------

def test_resize_mask_hand_computed_cases():
    mask = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], dtype=np.uint8)
    # Output pixel centres fall on input rows floor((2i+1)*2/2)=1 and columns floor((2j+1)*4/4) = 1, 3.
    assert masks.resize_nearest(mask, (1, 2)).tolist() == [[5, 7]]
    # 3 -> 2 columns: sources floor(3/4)=0 and floor(9/4)=2.
    assert masks.resize_nearest(np.array([[10, 20, 30]], dtype=np.uint8), (1, 2)).tolist() == [[10, 30]]
    # Doubling repeats each pixel into a 2x2 block.
    doubled = masks.resize_nearest(mask, (4, 8))
    assert np.array_equal(doubled, np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1))
    assert doubled.dtype == np.uint8


def test_resize_mask_never_invents_values():
    rng = np.random.default_rng(0)
    mask = rng.choice(np.array([0, 7, 26, 33], dtype=np.uint8), size=(37, 53))
    for size in [(8, 16), (5, 7), (100, 3), (37, 53)]:
        resized = masks.resize_nearest(mask, size)
        assert resized.shape == size and resized.dtype == np.uint8
        assert set(np.unique(resized)) <= {0, 7, 26, 33}
    assert np.array_equal(masks.resize_nearest(mask, (37, 53)), mask)


def test_resize_mask_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        masks.resize_nearest(np.zeros((4, 4, 3), dtype=np.uint8), (2, 2))
    with pytest.raises(ValueError, match="integer"):
        masks.resize_nearest(np.zeros((4, 4), dtype=np.float32), (2, 2))
    with pytest.raises(ValueError, match="positive integers"):
        masks.resize_nearest(np.zeros((4, 4), dtype=np.uint8), (0, 2))


def test_resize_image_averages_blocks_when_shrinking():
    block = np.array([[0, 40], [80, 120]], dtype=np.uint8)             # mean 60
    image = np.zeros((2, 4, 3), dtype=np.uint8)
    image[:, :2, 0] = block
    image[:, 2:, 1] = block + 100                                        # mean 160
    resized = prepare.resize_image(image, (1, 2))
    assert resized.shape == (1, 2, 3) and resized.dtype == np.uint8
    assert resized.tolist() == [[[60, 0, 0], [0, 160, 0]]]
    enlarged = prepare.resize_image(np.full((2, 2, 3), 77, dtype=np.uint8), (5, 3))
    assert enlarged.shape == (5, 3, 3) and (enlarged == 77).all()


# ---------------------------------------------------------------------------------------------------------
# Preparing
# ---------------------------------------------------------------------------------------------------------

def test_category_mask_equals_hand_computed_expectation(dataset, tmp_path, capsys):
    out = tmp_path / "prepared"
    assert prepare_script.main(["--root", str(dataset), "--out", str(out), "--splits", "train", "--quiet"]) == 0
    expected = np.zeros((H, W), dtype=np.uint8)                          # void everywhere else
    expected[16:32, :] = 1                                               # road -> flat
    expected[4:12, 10:20] = 7                                            # car -> vehicle, drawn on top
    frame = Frame(out, "train", "aachen", 0, 19)
    assert np.array_equal(read_grey(prepare.category_mask_path(frame)), expected)
    # Without --size nothing but category masks is written.
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert written == {"gtFine/train/aachen/aachen_000000_000019_gtFine_categoryIds.png",
                       "gtFine/train/bochum/bochum_000000_000007_gtFine_categoryIds.png"}
    assert "train: 2 frames, 2 files written, 0 up to date" in capsys.readouterr().out


def test_prepare_with_size_resizes_nearest_and_keeps_layout(dataset, tmp_path):
    out = tmp_path / "small"
    reports = prepare.prepare_dataset(dataset, out, ["train", "val"], size=(8, 16))
    assert reports["train"] == prepare.PrepareReport(frames=2, written=6, skipped=0)
    assert reports["val"] == prepare.PrepareReport(frames=1, written=3, skipped=0)
    source = Frame(dataset, "val", "frankfurt", 0, 1)
    small = Frame(out, "val", "frankfurt", 0, 1)
    label_ids = read_grey(small.gt_path("labelIds"))
    original = masks.read_label_ids(source.gt_path("labelIds"))
    assert label_ids.shape == (8, 16)
    # Pixel (i, j) of the 8x16 copy takes input pixel (4i + 2, 4j + 2): the one under its centre.
    assert np.array_equal(label_ids, original[2::4, 2::4])
    assert set(np.unique(label_ids)) <= set(np.unique(original))
    assert np.array_equal(read_grey(prepare.category_mask_path(small)), labels.ID_TO_CATEGORY_LUT[label_ids])
    with Image.open(small.image_path) as image:
        assert image.mode == "RGB" and image.size == (16, 8)
    marker = json.loads((out / prepare.MARKER_NAME).read_text())
    assert marker["size"] == [8, 16] and marker["source"] == str(dataset.resolve())


def test_second_run_writes_nothing_and_stale_outputs_are_redone(dataset, tmp_path, capsys):
    out = tmp_path / "small"
    args = ["--root", str(dataset), "--out", str(out), "--size", "8", "16", "--splits", "train", "val"]
    assert prepare_script.main(args) == 0
    before = all_files(out)
    assert prepare_script.main(args) == 0
    assert all_files(out) == before
    assert "total: 0 files written, 9 skipped" in capsys.readouterr().out
    # A newer input makes exactly the outputs computed from it stale.
    label_path = Frame(dataset, "train", "aachen", 0, 19).gt_path("labelIds")
    newer = max(before.values()) + 10**9
    os.utime(label_path, ns=(newer, newer))
    reports = prepare.prepare_dataset(dataset, out, ["train", "val"], size=(8, 16))
    assert reports["train"] == prepare.PrepareReport(frames=2, written=2, skipped=4)
    assert reports["val"].written == 0


def test_output_root_inside_or_equal_to_input_is_refused(dataset, capsys):
    before = all_files(dataset)
    for out in (dataset / "prepared", dataset, dataset / "gtFine"):
        with pytest.raises(ValueError, match="input root"):
            prepare.prepare_dataset(dataset, out, ["train"], size=(8, 16))
    assert prepare_script.main(["--root", str(dataset), "--out", str(dataset / "x")]) == 2
    assert "never written to" in capsys.readouterr().err
    assert all_files(dataset) == before


def test_non_empty_folder_without_marker_is_refused(dataset, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not made by prepare_cityscapes"):
        prepare.prepare_dataset(dataset, out, ["train"])
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_file_not_written_by_us_is_not_overwritten(dataset, tmp_path, capsys):
    out = tmp_path / "prepared"
    prepare.prepare_dataset(dataset, out, ["train"])
    foreign = prepare.category_mask_path(Frame(out, "val", "frankfurt", 0, 1))
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"someone else's file")
    assert prepare_script.main(["--root", str(dataset), "--out", str(out), "--splits", "val"]) == 2
    err = capsys.readouterr().err
    assert str(foreign) in err and "not written by prepare_cityscapes" in err
    assert foreign.read_bytes() == b"someone else's file"


def test_reusing_an_output_root_for_another_size_is_refused(dataset, tmp_path):
    out = tmp_path / "prepared"
    prepare.prepare_dataset(dataset, out, ["train"], size=(8, 16))
    with pytest.raises(ValueError, match="at size"):
        prepare.prepare_dataset(dataset, out, ["train"], size=(16, 32))


def test_missing_label_ids_is_named_and_nothing_is_written(dataset, tmp_path):
    missing = Frame(dataset, "train", "bochum", 0, 7).gt_path("labelIds")
    missing.unlink()
    out = tmp_path / "prepared"
    with pytest.raises(FileNotFoundError) as error:
        prepare.prepare_dataset(dataset, out, ["train"])
    assert str(missing) in str(error.value)
    assert not out.exists()


def test_label_ids_of_another_size_is_named(dataset, tmp_path):
    wrong = Frame(dataset, "val", "frankfurt", 0, 1).gt_path("labelIds")
    masks.write_label_ids(wrong, np.zeros((16, 32), dtype=np.uint8))
    with pytest.raises(ValueError) as error:
        prepare.prepare_dataset(dataset, tmp_path / "prepared", ["val"])
    assert str(wrong) in str(error.value) and "16x32" in str(error.value)


def test_missing_root_and_missing_split_are_clear_errors(dataset, tmp_path, capsys):
    assert prepare_script.main(["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a Cityscapes root" in capsys.readouterr().err
    assert prepare_script.main(["--root", str(dataset), "--out", str(tmp_path / "o"), "--splits", "test"]) == 2
    assert str(dataset / "leftImg8bit" / "test") in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_default_output_root_follows_seglib_data(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGLIB_DATA", str(tmp_path / "data"))
    assert prepare.default_output_root((128, 256)) == tmp_path / "data" / "prepared-128x256"
    assert prepare.default_output_root() == tmp_path / "data" / "prepared-fullsize"


# ---------------------------------------------------------------------------------------------------------
# Downloading (no network: the network functions are replaced)
# ---------------------------------------------------------------------------------------------------------

PACKAGE = "gtFine_trainvaltest.zip"
ZIP_FILES = {
    "README": b"gtFine readme\n",
    "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png": b"label bytes",
    "gtFine/val/frankfurt/frankfurt_000000_000001_gtFine_labelIds.png": b"more label bytes",
}


def make_zip(path: Path, files: dict[str, bytes] = ZIP_FILES) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("CITYSCAPES_USERNAME", raising=False)
    monkeypatch.delenv("CITYSCAPES_PASSWORD", raising=False)
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    monkeypatch.setattr(download_script, "toolkit_credentials_file", lambda: tmp_path / "no" / "credentials.json")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a TTY: no prompt may wait for input


@pytest.fixture
def fake_server(monkeypatch, no_credentials):
    """Replace the network functions; records logins and downloads. Package bytes come from ``server.files``."""
    class Server:
        logins: list = []
        downloads: list = []
        files = ZIP_FILES

    server = Server()
    monkeypatch.setenv("CITYSCAPES_USERNAME", "ada")
    monkeypatch.setenv("CITYSCAPES_PASSWORD", "secret")

    def open_session(credentials):
        server.logins.append(credentials)
        return "session"

    def fetch_package(session, package, folder):
        assert session == "session"
        server.downloads.append((package, (folder / package).exists()))
        make_zip(folder / package, server.files)
        return folder / package

    monkeypatch.setattr(download_script, "open_session", open_session)
    monkeypatch.setattr(download_script, "fetch_package", fetch_package)
    return server


def test_missing_credentials_without_tty_is_a_clear_error(no_credentials, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(download_script, "open_session", lambda credentials: pytest.fail("must not log in"))
    monkeypatch.setattr("builtins.input", lambda prompt="": pytest.fail("prompted although stdin is no TTY"))
    monkeypatch.setattr(download_script.getpass, "getpass", lambda prompt="": pytest.fail("prompted for a password"))
    assert download_script.main(["--dest", str(tmp_path / "cs")]) == 2
    err = capsys.readouterr().err
    assert "CITYSCAPES_USERNAME" in err and "CITYSCAPES_PASSWORD" in err
    assert "https://www.cityscapes-dataset.com/register/" in err
    assert download_script.main(["--list"]) == 2
    assert "needs a login" in capsys.readouterr().err


def test_credentials_are_prompted_for_only_on_a_tty(no_credentials, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt="": "ada")
    monkeypatch.setattr(download_script.getpass, "getpass", lambda prompt="": "secret")
    found = download_script.find_credentials()
    assert (found.username, found.password, found.source) == ("ada", "secret", "the prompt")


def test_credentials_sources_and_order(no_credentials, monkeypatch, tmp_path):
    stored = tmp_path / "stored.json"
    stored.write_text(json.dumps({"username": "bob", "password": "pw"}))
    monkeypatch.setattr(download_script, "toolkit_credentials_file", lambda: stored)
    found = download_script.find_credentials()
    assert (found.username, found.password, found.source) == ("bob", "pw", str(stored))
    assert "pw" not in repr(found)
    monkeypatch.setenv("CITYSCAPES_USERNAME", "ada")
    with pytest.raises(ValueError, match="CITYSCAPES_PASSWORD is not set"):
        download_script.find_credentials()
    monkeypatch.setenv("CITYSCAPES_PASSWORD", "secret")
    assert download_script.find_credentials().username == "ada"


def test_the_official_toolkit_stores_credentials_where_we_look():
    from cityscapesscripts.download import downloader

    source = inspect.getsource(downloader.login)
    assert "credentials.json" in source and "user_data_dir(appname, appauthor)" in source
    assert download_script.toolkit_credentials_file().parts[-2:] == ("cityscapesscripts", "credentials.json")


def test_download_unpacks_and_second_run_downloads_nothing(fake_server, tmp_path, capsys):
    dest = tmp_path / "cs"
    assert download_script.main(["--dest", str(dest), "--packages", PACKAGE]) == 0
    for name, data in ZIP_FILES.items():
        assert (dest / name).read_bytes() == data
    assert [c.username for c in fake_server.logins] == ["ada"]
    assert fake_server.downloads == [(PACKAGE, False)]
    state = dest / download_script.STATE_DIR
    assert sorted(p.name for p in state.iterdir()) == [f"{PACKAGE}.done", "partial"]  # zip deleted, no temp folder
    before = all_files(dest)
    capsys.readouterr()
    assert download_script.main(["--dest", str(dest), "--packages", PACKAGE]) == 0
    assert fake_server.downloads == [(PACKAGE, False)] and len(fake_server.logins) == 1
    assert all_files(dest) == before
    assert "already unpacked" in capsys.readouterr().out


def test_dest_defaults_to_cityscapes_dataset_and_present_tree_counts_as_done(fake_server, monkeypatch, tmp_path):
    dest = tmp_path / "cs"
    for split in ("train", "val", "test"):
        (dest / "gtFine" / split).mkdir(parents=True)
        (dest / "gtFine" / split / "x.png").write_bytes(b"x")
    monkeypatch.setenv("CITYSCAPES_DATASET", str(dest))
    assert download_script.main(["--packages", PACKAGE]) == 0
    assert fake_server.downloads == [] and fake_server.logins == []


def test_interrupted_download_resumes_from_the_partial_file(fake_server, monkeypatch, tmp_path, capsys):
    dest = tmp_path / "cs"
    fetch = download_script.fetch_package

    def interrupted(session, package, folder):
        (folder / package).write_bytes(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(download_script, "fetch_package", interrupted)
    assert download_script.main(["--dest", str(dest), "--packages", PACKAGE]) == 130
    assert "rerun" in capsys.readouterr().err
    assert not (dest / "gtFine").exists() and not download_script.marker_path(dest, PACKAGE).exists()
    monkeypatch.setattr(download_script, "fetch_package", fetch)
    assert download_script.main(["--dest", str(dest), "--packages", PACKAGE]) == 0
    assert fake_server.downloads == [(PACKAGE, True)]  # the partial file was there to resume
    assert (dest / "README").read_bytes() == ZIP_FILES["README"]


def test_interrupted_unpack_is_finished_by_the_next_run(fake_server, monkeypatch, tmp_path):
    fake_server.files = {**ZIP_FILES, **{f"gtFine/{split}/bonn/bonn_00000{i}_000019_gtFine_labelIds.png": b"%d" % i
                                          for split in ("test", "train", "val") for i in range(2)}}
    dest = tmp_path / "cs"
    real_replace, moves = os.replace, []

    def interrupted_replace(source, target):
        moves.append(target)
        if len(moves) == 1 + len(fake_server.files) - 1:  # the zip, then every file but the last
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(download_script.os, "replace", interrupted_replace)
    assert download_script.main(["--dest", str(dest), "--packages", PACKAGE]) == 130
    assert all(any((dest / "gtFine" / split).iterdir()) for split in ("train", "val", "test"))  # looks complete
    monkeypatch.setattr(download_script.os, "replace", real_replace)
    assert download_script.main(["--dest", str(dest), "--packages", PACKAGE]) == 0
    for name, data in fake_server.files.items():
        assert (dest / name).read_bytes() == data
    assert fake_server.downloads == [(PACKAGE, False)]  # the kept zip was unpacked again, not downloaded
    assert download_script.marker_path(dest, PACKAGE).is_file()
    assert not download_script.unpacking_path(dest, PACKAGE).exists()


def test_unpacking_refuses_to_clobber_a_differing_file(fake_server, tmp_path, capsys):
    dest = tmp_path / "cs"
    same = dest / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
    differing = dest / "gtFine/val/frankfurt/frankfurt_000000_000001_gtFine_labelIds.png"
    same.parent.mkdir(parents=True)
    differing.parent.mkdir(parents=True)
    same.write_bytes(ZIP_FILES["gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"])
    differing.write_bytes(b"my own edit")
    assert download_script.main(["--dest", str(dest), "--packages", PACKAGE, "--keep-zip"]) == 2
    err = capsys.readouterr().err
    assert str(differing) in err and str(same) not in err
    assert differing.read_bytes() == b"my own edit"
    assert not (dest / "README").exists()                               # nothing at all was moved in
    assert not download_script.marker_path(dest, PACKAGE).exists()
    # Once the user moves the file away the rerun finishes from the kept zip, without downloading again.
    differing.unlink()
    assert download_script.main(["--dest", str(dest), "--packages", PACKAGE]) == 0
    assert fake_server.downloads == [(PACKAGE, False)]
    assert differing.read_bytes() == b"more label bytes"


def test_differing_top_level_readme_is_kept_beside_the_existing_one(fake_server, tmp_path):
    dest = tmp_path / "cs"
    dest.mkdir()
    (dest / "README").write_bytes(b"leftImg8bit readme\n")
    assert download_script.main(["--dest", str(dest), "--packages", PACKAGE]) == 0
    assert (dest / "README").read_bytes() == b"leftImg8bit readme\n"
    assert (dest / "README_gtFine_trainvaltest").read_bytes() == ZIP_FILES["README"]


def test_unsafe_zip_member_is_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    make_zip(bad, {"../evil.txt": b"x"})
    dest = tmp_path / "cs"
    dest.mkdir()
    with pytest.raises(ValueError, match="unsafe path"):
        download_script.unpack_package(bad, dest, "bad.zip")
    assert not (tmp_path / "evil.txt").exists()


def test_fetch_package_calls_the_toolkit_and_drops_a_corrupt_file(monkeypatch, tmp_path):
    from cityscapesscripts.download import downloader
    calls = []

    def download_packages(*, session, package_names, destination_path, resume=False):
        calls.append((session, package_names, destination_path, resume))
        (Path(destination_path) / package_names[0]).write_bytes(b"garbage")
        raise Exception("MD5 sum of downloaded file does not match.")

    monkeypatch.setattr(downloader, "download_packages", download_packages)
    with pytest.raises(download_script.DownloadError, match="MD5"):
        download_script.fetch_package("session", PACKAGE, tmp_path)
    assert calls == [("session", [PACKAGE], str(tmp_path), False)]
    assert not (tmp_path / PACKAGE).exists()


def test_open_session_reports_rejected_credentials(monkeypatch):
    import requests

    class Response:
        def __init__(self, status_code):
            self.status_code = status_code

        def raise_for_status(self):
            pass

    class Session:
        status = 200
        posted = []

        def get(self, url, allow_redirects):
            return Response(200)

        def post(self, url, data, allow_redirects):
            Session.posted.append(data)
            return Response(Session.status)

    monkeypatch.setattr(requests, "Session", Session)
    credentials = download_script.Credentials("ada", "wrong", "$CITYSCAPES_USERNAME/$CITYSCAPES_PASSWORD")
    with pytest.raises(ValueError, match="rejected the login of 'ada'.*CITYSCAPES_USERNAME"):
        download_script.open_session(credentials)
    assert Session.posted == [{"username": "ada", "password": "wrong", "submit": "Login"}]
    Session.status = 302
    assert isinstance(download_script.open_session(credentials), Session)


def test_list_prints_package_names(fake_server, monkeypatch, capsys):
    monkeypatch.setattr(download_script, "available_packages",
                        lambda session: [{"name": PACKAGE, "size": "241MB"}, {"name": "gtCoarse.zip", "size": "1.3GB"}])
    assert download_script.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert PACKAGE in out and "gtCoarse.zip" in out


def test_default_splits_are_those_the_root_has(dataset, tmp_path, capsys):
    out = tmp_path / "prepared"
    assert prepare_script.main(["--root", str(dataset), "--out", str(out), "--quiet"]) == 0
    assert "preparing train, val of" in capsys.readouterr().out
    assert prepare.category_mask_path(Frame(out, "val", "frankfurt", 0, 1)).is_file()
    assert not (out / "gtFine" / "test").exists()


def test_network_failure_keeps_the_partial_file_and_says_how_to_resume(monkeypatch, tmp_path):
    from cityscapesscripts.download import downloader
    import requests

    def download_packages(*, session, package_names, destination_path, resume=False):
        (Path(destination_path) / package_names[0]).write_bytes(b"PK half")
        raise requests.ConnectionError("connection reset")

    monkeypatch.setattr(downloader, "download_packages", download_packages)
    with pytest.raises(OSError, match="rerun to resume") as error:
        download_script.fetch_package("session", PACKAGE, tmp_path)
    assert str(tmp_path / PACKAGE) in str(error.value)
    assert (tmp_path / PACKAGE).read_bytes() == b"PK half"


# ---------------------------------------------------------------------------------------------------------
# Hardening: closed stdin, credentials before the destination, bounded sizes, interrupts
# ---------------------------------------------------------------------------------------------------------

def test_closed_stdin_gives_the_credentials_message_and_creates_nothing(tmp_path):
    """Run exactly as `python download_cityscapes.py --dest X <&-`: stdin is None in Python, not a crash."""
    dest = tmp_path / "cs"
    env = {key: value for key, value in os.environ.items()
           if key not in ("CITYSCAPES_USERNAME", "CITYSCAPES_PASSWORD", "CITYSCAPES_DATASET")}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "home" / "data"))  # no stored credentials
    script = REPO / "data_scripts" / "download_cityscapes.py"
    done = subprocess.run(["bash", "-c", 'exec "$0" "$@" <&-', sys.executable, str(script), "--dest", str(dest)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "CITYSCAPES_USERNAME" in done.stderr and "https://www.cityscapes-dataset.com/register/" in done.stderr
    assert not dest.exists()


@pytest.mark.parametrize("stdin", [None, "closed"])
def test_missing_credentials_create_no_destination(no_credentials, monkeypatch, tmp_path, capsys, stdin):
    if stdin == "closed":
        stdin = io.StringIO("")
        stdin.close()
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(download_script, "open_session", lambda credentials: pytest.fail("must not log in"))
    dest = tmp_path / "new" / "cs"
    assert download_script.main(["--dest", str(dest)]) == 2
    assert "CITYSCAPES_PASSWORD" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_rejected_login_creates_no_destination(fake_server, monkeypatch, tmp_path, capsys):
    def refuse(credentials):
        raise ValueError("Cityscapes rejected the login of 'ada'")

    monkeypatch.setattr(download_script, "open_session", refuse)
    dest = tmp_path / "cs"
    assert download_script.main(["--dest", str(dest)]) == 2
    assert "rejected" in capsys.readouterr().err and not dest.exists()


def test_sizes_above_the_maximum_are_refused_before_anything_is_created(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    for size in [(100000, 100000), (4097, 64), (32, 8193)]:
        with pytest.raises(ValueError, match="at most 4096x8192"):
            prepare.open_output_root(dataset, out, size)
        with pytest.raises(ValueError, match="at most 4096x8192"):
            prepare.prepare_dataset(dataset, out, ["train"], size)
        with pytest.raises(ValueError, match="at most 4096x8192"):
            prepare.prepare_split(dataset, out, "train", size)
        assert not out.exists()
    assert prepare_script.main(["--root", str(dataset), "--out", str(out), "--size", "100000", "100000"]) == 2
    err = capsys.readouterr().err
    assert "too large" in err and "4096x8192" in err and "Traceback" not in err
    assert not out.exists()
    assert prepare.MAX_SIZE == (4 * 1024, 4 * 2048)  # four Cityscapes frames per side, documented in seglib.prepare
    assert prepare.check_output_size(prepare.MAX_SIZE) == prepare.MAX_SIZE


def test_prepare_ctrl_c_is_a_message_and_exit_code_130(dataset, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_script, "prepare_dataset", interrupted)
    try:
        code = prepare_script.main(["--root", str(dataset), "--out", str(tmp_path / "out")])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main()")
    err = capsys.readouterr().err
    assert code == 130 and err.strip().splitlines() == [err.strip()] and "interrupted" in err and "rerun" in err


def test_prepare_sigterm_is_a_message_and_exit_code_143(dataset, tmp_path, monkeypatch, capsys):
    before = signal.getsignal(signal.SIGTERM)

    def terminated(*args, **kwargs):
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, before):
            pytest.fail("main() does not handle SIGTERM (sending it would kill the test run)")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        pytest.fail("SIGTERM was not turned into an exception")

    monkeypatch.setattr(prepare_script, "prepare_dataset", terminated)
    assert prepare_script.main(["--root", str(dataset), "--out", str(tmp_path / "out")]) == 143
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and "terminated" in err and "rerun" in err
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back
