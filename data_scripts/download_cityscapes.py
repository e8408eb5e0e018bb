"""Download and unpack the real Cityscapes with your own account, through the official toolkit's downloader.

Reads:  your Cityscapes credentials - ``$CITYSCAPES_USERNAME`` and ``$CITYSCAPES_PASSWORD``, else the file the
        official ``csDownload`` stores them in, else an interactive prompt (only when stdin is a terminal).
        Register at https://www.cityscapes-dataset.com/register/ first.
Writes: into ``--dest`` (default ``$CITYSCAPES_DATASET``) the unpacked packages (default
        ``gtFine_trainvaltest.zip`` and ``leftImg8bit_trainvaltest.zip``: ``gtFine/``, ``leftImg8bit/``, ...),
        and its own bookkeeping in ``<dest>/.cityscapes-download/``: partial downloads, one ``<package>.done``
        marker per unpacked package, and the zips themselves with ``--keep-zip``. Nothing is created before the
        credentials are found and the login has succeeded: without credentials the script only says how to get
        them (exit code 2).

Reruns are cheap and safe: an unpacked package (marker, or its ``<name>/{train,val,test}`` folders already
there) is neither downloaded nor unpacked again; an interrupted download resumes (the toolkit checks the md5 sum);
unpacking goes to a temporary folder first, then files are moved in. An existing file is never overwritten:
identical ones are skipped, differing ones stop the unpacking, naming them (a package's loose top-level files
such as ``README`` are kept beside an existing differing one as ``README_<package>``).

Examples::

    CITYSCAPES_DATASET=~/data/cityscapes python data_scripts/download_cityscapes.py
    python data_scripts/download_cityscapes.py --list
"""

from __future__ import annotations

import argparse
import filecmp
import getpass
import json
import os
import shutil
import sys
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

try:
    import seglib  # noqa: F401  (importable when installed or run from the repository root)
except ImportError:  # run as a file from elsewhere: the package lives next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seglib import safeio
from seglib.cityscapes import CITYSCAPES_ENV

DEFAULT_PACKAGES = ("gtFine_trainvaltest.zip", "leftImg8bit_trainvaltest.zip")
USERNAME_ENV = "CITYSCAPES_USERNAME"
PASSWORD_ENV = "CITYSCAPES_PASSWORD"
REGISTER_URL = "https://www.cityscapes-dataset.com/register/"
LOGIN_URL = "https://www.cityscapes-dataset.com/login"
#: Bookkeeping folder inside the destination.
STATE_DIR = ".cityscapes-download"
_TREE_SPLITS = ("train", "val", "test")


class DownloadError(RuntimeError):
    """The server or the toolkit refused a download (unknown package, md5 mismatch, ...)."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str  # where they came from, for error messages


# ---------------------------------------------------------------------------------------------------------
# The official toolkit
# ---------------------------------------------------------------------------------------------------------

def _toolkit() -> Any:
    """The official ``cityscapesscripts.download.downloader`` module."""
    try:
        from cityscapesscripts.download import downloader
    except ImportError as error:
        raise FileNotFoundError(
            f"the official Cityscapes toolkit is not importable ({error}); install it with "
            "'pip install cityscapesscripts' and rerun"
        ) from None
    return downloader


def toolkit_credentials_file() -> Path:
    """Where the official downloader stores credentials: ``appdirs.user_data_dir('cityscapesscripts',
    'cityscapes')/credentials.json`` (on Linux ``~/.local/share/cityscapesscripts/credentials.json``)."""
    import appdirs  # a dependency of cityscapesscripts

    appname = _toolkit().__name__.split(".")[0]  # exactly how downloader.login() names its folder
    return Path(appdirs.user_data_dir(appname, "cityscapes")) / "credentials.json"


# ---------------------------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------------------------

def _no_credentials_message(stored: Path) -> str:
    return (
        f"no Cityscapes credentials: set {USERNAME_ENV} and {PASSWORD_ENV} to your Cityscapes account "
        f"(register at {REGISTER_URL}), or store them once with the official 'csDownload' tool (it writes "
        f"{stored}), or run this script in a terminal to be asked for them"
    )


def _credentials_from_env(environ: Mapping[str, str]) -> Credentials | None:
    username, password = environ.get(USERNAME_ENV), environ.get(PASSWORD_ENV)
    if not username and not password:
        return None
    if not (username and password):
        missing = PASSWORD_ENV if username else USERNAME_ENV
        raise ValueError(f"{missing} is not set but {USERNAME_ENV if username else PASSWORD_ENV} is; set both")
    return Credentials(username, password, f"${USERNAME_ENV}/${PASSWORD_ENV}")


def _credentials_from_file(path: Path) -> Credentials | None:
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(str(stored["username"]), str(stored["password"]), str(path))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"cannot read the stored Cityscapes credentials {path} ({error!r}); fix or delete it"
        ) from None


def _stdin_is_a_terminal() -> bool:
    """Whether a prompt can be answered: stdin exists (it is None when the script runs with stdin closed), is open
    and is a terminal."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # a closed or broken stdin
        return False


def _credentials_from_prompt() -> Credentials | None:
    if not _stdin_is_a_terminal():
        return None
    try:
        username = input("Cityscapes username or email address: ").strip()
        password = getpass.getpass("Cityscapes password: ")
    except EOFError:
        return None
    return Credentials(username, password, "the prompt") if username and password else None


def find_credentials(environ: Mapping[str, str] | None = None) -> Credentials:
    """Credentials from the environment, else the toolkit's stored file, else a prompt when stdin is a TTY (not
    when stdin is closed or redirected).

    Raises ``ValueError`` saying how to register and which variables to set when there are none; never waits
    for input that cannot come.
    """
    environ = os.environ if environ is None else environ
    stored = toolkit_credentials_file()
    credentials = (_credentials_from_env(environ) or _credentials_from_file(stored) or _credentials_from_prompt())
    if credentials is None:
        raise ValueError(_no_credentials_message(stored))
    return credentials


# ---------------------------------------------------------------------------------------------------------
# Network: the only functions that talk to the server (tests replace them)
# ---------------------------------------------------------------------------------------------------------

def open_session(credentials: Credentials) -> Any:
    """Log in and return a ``requests.Session`` holding the login cookie.

    The same two requests as the toolkit's ``downloader.login()``, which can only read its stored file or
    prompt: GET the login page, POST username/password/``submit=Login``; a 302 redirect means success.
    Raises ``ValueError`` for rejected credentials, naming where they came from.
    """
    _toolkit()
    import requests  # a dependency of cityscapesscripts

    session = requests.Session()
    session.get(LOGIN_URL, allow_redirects=False).raise_for_status()
    data = {"username": credentials.username, "password": credentials.password, "submit": "Login"}
    response = session.post(LOGIN_URL, data=data, allow_redirects=False)
    response.raise_for_status()
    if response.status_code != 302:
        raise ValueError(
            f"Cityscapes rejected the login of {credentials.username!r} (credentials from {credentials.source}); "
            f"check them at {LOGIN_URL}, fix {USERNAME_ENV}/{PASSWORD_ENV} or delete {toolkit_credentials_file()}, "
            f"or register at {REGISTER_URL}"
        )
    return session


def available_packages(session: Any) -> list[dict[str, str]]:
    """The packages the account may download: the toolkit's ``get_available_packages`` (name, size, ...)."""
    return _toolkit().get_available_packages(session=session)


def fetch_package(session: Any, package: str, folder: Path) -> Path:
    """Download ``package`` to ``folder/package`` with the toolkit's ``download_packages``, resuming a partial
    file already there; the toolkit checks the md5 sum. Returns the path. Raises ``DownloadError`` for what the
    toolkit refuses (unknown package, md5 mismatch), ``OSError`` (``requests`` errors) for network trouble."""
    path = folder / package
    try:
        _toolkit().download_packages(session=session, package_names=[package], destination_path=str(folder),
                                     resume=path.exists())
    except OSError as error:  # requests' errors; a partial file that is in fact complete answers 416 on resume
        raise OSError(f"{package}: download failed ({error}); rerun to resume from {path}, or delete that "
                      "file to start over if the same error comes back") from error
    except Exception as error:  # the toolkit raises plain Exception for every refusal; keep others as they are
        if type(error) is not Exception:
            raise
        if "MD5" in str(error):
            path.unlink(missing_ok=True)  # a corrupt file must not be resumed
        raise DownloadError(f"{package}: {error}") from None
    return path


# ---------------------------------------------------------------------------------------------------------
# Unpacking without clobbering
# ---------------------------------------------------------------------------------------------------------

@dataclass
class UnpackReport:
    moved: int = 0
    identical: int = 0
    renamed: list[str] = field(default_factory=list)


def _safe_members(archive: zipfile.ZipFile, zip_path: Path) -> None:
    for name in archive.namelist():
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise ValueError(
                f"{zip_path} holds an unsafe path {name!r}; it is not unpacked - delete it and download again"
            )


def _extract_to_temp(zip_path: Path, temp: Path) -> list[Path]:
    """Unpack into ``temp`` (emptied first); returns the unpacked files relative to it."""
    if temp.exists():
        shutil.rmtree(temp)
    temp.mkdir(parents=True)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            _safe_members(archive, zip_path)
            archive.extractall(temp)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{zip_path} is not a valid zip ({error}); delete it and rerun to download it again") from None
    return sorted(path.relative_to(temp) for path in temp.rglob("*") if path.is_file())


def _plan(temp: Path, files: list[Path], dest: Path, package: str) -> tuple[dict[Path, Path], UnpackReport]:
    """Decide where each unpacked file goes; raises ``FileExistsError`` listing files that would be clobbered."""
    moves, report, conflicts = {}, UnpackReport(), []
    for relative in files:
        target = dest / relative
        if target.exists() and len(relative.parts) == 1 and not filecmp.cmp(temp / relative, target, shallow=False):
            target = dest / f"{relative.stem}_{package.removesuffix('.zip')}{relative.suffix}"
            report.renamed.append(target.name)
        if not target.exists():
            moves[temp / relative] = target
        elif filecmp.cmp(temp / relative, target, shallow=False):
            report.identical += 1
        else:
            conflicts.append(target)
    if conflicts:
        listed = "\n  ".join(str(path) for path in conflicts[:10])
        more = f"\n  ... and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
        raise FileExistsError(
            f"unpacking {package} would overwrite {len(conflicts)} existing file(s) that differ from the package:\n"
            f"  {listed}{more}\nnothing was unpacked; move them away (or choose another --dest) and rerun"
        )
    return moves, report


def unpack_package(zip_path: Path, dest: Path, package: str) -> UnpackReport:
    """Unpack ``zip_path`` into ``dest`` via a temporary folder, never overwriting an existing file."""
    temp = dest / STATE_DIR / f"unpack-{package}"
    files = _extract_to_temp(zip_path, temp)
    try:
        moves, report = _plan(temp, files, dest, package)
        for source, target in moves.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        report.moved = len(moves)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return report


# ---------------------------------------------------------------------------------------------------------
# Packages: done or not, and installing one
# ---------------------------------------------------------------------------------------------------------

def marker_path(dest: Path, package: str) -> Path:
    return dest / STATE_DIR / f"{package}.done"


def unpacking_path(dest: Path, package: str) -> Path:
    """Present while ``package`` is being unpacked: an interrupted unpack leaves it, so the next run finishes."""
    return dest / STATE_DIR / f"{package}.unpacking"


def installed_reason(dest: Path, package: str) -> str | None:
    """Why ``package`` counts as unpacked in ``dest`` (its marker, or its ``X/{train,val,test}`` folders for a
    ``X_trainvaltest.zip`` that this script never started on), or None if it does not."""
    if marker_path(dest, package).is_file():
        return f"marker {marker_path(dest, package)}"
    state = dest / STATE_DIR
    if any(path.exists() for path in (unpacking_path(dest, package), state / package, state / "partial" / package)):
        return None  # this script started on the package and did not finish: resume rather than trust the folders
    top = package.removesuffix(".zip").removesuffix("_trainvaltest")
    if package.endswith("_trainvaltest.zip") and all(
            (dest / top / split).is_dir() and any((dest / top / split).iterdir()) for split in _TREE_SPLITS):
        return f"{dest / top}/{{{','.join(_TREE_SPLITS)}}} already present"
    return None


def install_package(session: Any, dest: Path, package: str, keep_zip: bool = False) -> UnpackReport:
    """Download (or resume, or reuse a finished zip), unpack, and mark ``package`` as done."""
    state = dest / STATE_DIR
    zip_path = state / package
    if not zip_path.is_file():
        partial = state / "partial"
        partial.mkdir(parents=True, exist_ok=True)
        print(f"{package}: downloading (partial file: {partial / package})", flush=True)
        os.replace(fetch_package(session, package, partial), zip_path)
    print(f"{package}: unpacking into {dest}", flush=True)
    unpacking_path(dest, package).touch()
    report = unpack_package(zip_path, dest, package)
    marker = {"package": package, "files_moved": report.moved, "files_identical": report.identical,
              "renamed": report.renamed, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    safeio.atomic_write_json(marker_path(dest, package), marker)  # whole or absent: "done" means done
    unpacking_path(dest, package).unlink()
    if not keep_zip:
        zip_path.unlink()
    return report


# ---------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Download and unpack Cityscapes packages with your own account (official toolkit).",
        epilog=f"Needs a Cityscapes account ({REGISTER_URL}); set {USERNAME_ENV} and {PASSWORD_ENV}.",
    )
    parser.add_argument("--dest", type=Path, default=None,
                        help=f"dataset root to unpack into (default: ${CITYSCAPES_ENV})")
    parser.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES), metavar="NAME.zip",
                        help=f"packages to get (default: {' '.join(DEFAULT_PACKAGES)})")
    parser.add_argument("--keep-zip", action="store_true", help="keep the downloaded zips in <dest>/" + STATE_DIR)
    parser.add_argument("--list", action="store_true", help="list the packages your account can download (needs login)")
    return parser.parse_args(argv)


def _destination(dest: Path | None) -> Path:
    """The destination folder, checked but not created (that waits until the credentials are known to work)."""
    if dest is None:
        if not os.environ.get(CITYSCAPES_ENV):
            raise ValueError(f"no destination: pass --dest DIR or set {CITYSCAPES_ENV} to the folder to unpack into")
        dest = Path(os.environ[CITYSCAPES_ENV])
    dest = dest.expanduser()
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"destination {dest} exists and is not a folder; choose another --dest")
    return dest


def _list(session: Any) -> None:
    print("packages your account can download (see https://www.cityscapes-dataset.com/downloads/):")
    for package in available_packages(session):
        print(f"  {package['name']}  ({package['size']})")


def _download(args: argparse.Namespace) -> None:
    dest = _destination(args.dest)
    pending = []
    for package in dict.fromkeys(args.packages):
        reason = installed_reason(dest, package)
        print(f"{package}: already unpacked ({reason}), skipped" if reason else f"{package}: to do", flush=True)
        if not reason:
            pending.append(package)
    if not pending:
        print(f"nothing to download; {dest} is complete")
        return
    # log in (or fail for want of credentials) before anything is created
    session = open_session(find_credentials()) if any(not (dest / STATE_DIR / p).is_file() for p in pending) else None
    dest.mkdir(parents=True, exist_ok=True)
    for package in pending:
        report = install_package(session, dest, package, args.keep_zip)
        renamed = f"; kept beside existing differing files: {', '.join(report.renamed)}" if report.renamed else ""
        print(f"{package}: {report.moved} files unpacked, {report.identical} identical files skipped{renamed}")
    print(f"done; set {CITYSCAPES_ENV}={dest} to use it")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.list:
            try:
                credentials = find_credentials()
            except ValueError as error:
                raise ValueError(
                    f"listing packages needs a login (the toolkit lists only after logging in): {error}"
                ) from None
            _list(open_session(credentials))
        else:
            _download(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except DownloadError as error:
        print(f"error: download refused: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # network trouble (requests errors are OSErrors), disk full, ...
        print(f"error: {error}\nrerun the same command to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
