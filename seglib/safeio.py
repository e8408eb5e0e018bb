"""Writing files safely: whole files only, never over someone else's data, one writer at a time.

Every module that writes to disk (the generated dataset, prepared copies, TFRecords, training runs, results files)
uses these few functions, so there is one place that decides how it is done:

* :func:`atomic_write` writes under a temporary name in the same folder, then renames it into place
  (``os.replace``): a reader sees the old file or the new one, never half a file; an interrupted run leaves a
  temporary that :func:`remove_stale_temporaries` deletes later (or as soon as its writer process, whose id is in
  the name, is gone).
* :func:`claim_folder` makes a folder ours with a marker file, and refuses a non-empty folder without one (it may
  hold the user's own data). :func:`create_exclusive` creates a file only if it does not exist, atomically, so two
  processes claiming the same empty folder agree on one marker.
* :class:`Ledger` lists the files written into a folder, so that a file we did not write is never overwritten.
* :func:`file_lock` holds an exclusive lock, so that two processes never produce the same thing at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["temporary_path", "is_temporary", "atomic_write", "atomic_write_text", "atomic_write_json",
           "create_exclusive", "claim_folder", "Ledger", "file_lock", "remove_stale_temporaries",
           "temporary_writer"]

PathLike = str | os.PathLike
_TEMPORARY = re.compile(r"^\..+\.tmp\d+(\.[A-Za-z0-9]+)?$")
_WRITER = re.compile(r"^\..+\.tmp(\d+)(\.[A-Za-z0-9]+)?$")


def temporary_path(path: PathLike) -> Path:
    """The temporary name :func:`atomic_write` uses for ``path``: hidden, in the same folder, with this process's
    id and the same extension (Pillow and Keras choose a format from it): ``a/b.png -> a/.b.tmp1234.png``."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def is_temporary(path: PathLike) -> bool:
    """Whether ``path`` is named like a temporary of :func:`atomic_write`."""
    return bool(_TEMPORARY.match(Path(path).name))


def atomic_write(path: PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary)`` to write the file, then rename it to ``path`` (created folders included).

    The rename is atomic on one file system, so ``path`` is either absent, its old self, or complete. The
    temporary is removed if ``write`` fails. Returns ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text file."""
    return atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def atomic_write_json(path: PathLike, value: Any, indent: int | None = 2) -> Path:
    """:func:`atomic_write` of ``value`` as JSON (ending with a newline)."""
    return atomic_write_text(path, json.dumps(value, indent=indent) + "\n")


def create_exclusive(path: PathLike, text: str) -> bool:
    """Create ``path`` holding ``text`` only if it does not exist; True if this call created it.

    The file appears whole: it is written under a temporary name, then hard-linked into place (atomic, and refused
    when ``path`` exists); where hard links are not supported, an exclusive create is used instead.
    """
    path = Path(path)
    temporary = temporary_path(path)
    temporary.write_text(text, encoding="utf-8")
    try:
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links here (some network and FAT file systems)
        try:
            with open(path, "x", encoding="utf-8") as file:
                file.write(text)
            return True
        except FileExistsError:
            return False
    finally:
        temporary.unlink(missing_ok=True)


def claim_folder(folder: PathLike, marker_name: str, record: Mapping[str, Any], not_ours: str) -> dict:
    """Make ``folder`` ours, or find that it already is; returns what its marker records (the caller compares it
    with ``record``: another process may have claimed the folder first, with other settings).

    A missing or empty folder is created with a marker ``marker_name`` holding ``record`` (JSON). A folder that
    exists and holds anything else but no marker raises ``FileExistsError(not_ours)``: it may be the user's data.
    A marker that cannot be read raises ``ValueError`` naming it.
    """
    folder = Path(folder).expanduser()
    marker = folder / marker_name
    if not marker.is_file():
        if folder.exists() and (not folder.is_dir() or any(path.name != marker_name and not is_temporary(path)
                                                           for path in folder.iterdir())):
            raise FileExistsError(not_ours)
        folder.mkdir(parents=True, exist_ok=True)
        create_exclusive(marker, json.dumps(dict(record), indent=2) + "\n")
    try:
        found = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{marker} cannot be read ({error}); delete {folder} and let it be made again") from None
    if not isinstance(found, dict):
        raise ValueError(f"{marker} does not hold a JSON object; delete {folder} and let it be made again")
    return found


class Ledger:
    """The list of files written into ``folder`` (one relative path a line in ``folder/name``).

    A path is recorded *before* its file is written, so a file an interrupted run left behind is still known to be
    ours; a file that exists but is not listed is someone else's (:meth:`check_ours`).
    """

    def __init__(self, folder: PathLike, name: str):
        self.folder, self.path = Path(folder), Path(folder) / name
        self._paths = set(self.path.read_text(encoding="utf-8").split("\n")) - {""} if self.path.is_file() else set()

    def _relative(self, path: PathLike) -> str:
        return Path(path).relative_to(self.folder).as_posix()

    def __contains__(self, path: PathLike) -> bool:
        return self._relative(path) in self._paths

    def check_ours(self, path: PathLike, message: str) -> None:
        """Raise ``FileExistsError(message)`` if ``path`` exists but is not listed."""
        if Path(path).exists() and path not in self:
            raise FileExistsError(message)

    def record(self, path: PathLike) -> None:
        """List ``path`` (appended at once; a no-op if it is listed)."""
        relative = self._relative(path)
        if relative not in self._paths:
            with open(self.path, "a", encoding="utf-8") as ledger:
                ledger.write(relative + "\n")
            self._paths.add(relative)


@contextlib.contextmanager
def file_lock(path: PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block: a second process asking for
    the same lock waits until the first leaves the block (or dies: the system releases the lock)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def temporary_writer(path: PathLike) -> int | None:
    """The id of the process that writes (or wrote) the temporary ``path`` (see :func:`temporary_path`), or None
    if ``path`` is not named like a temporary."""
    found = _WRITER.match(Path(path).name)
    return int(found.group(1)) if found else None


def _is_running(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (a zombie counts; another user's process too)."""
    if pid <= 0:  # never a writer's id (and os.kill(0, ...) would mean our process group)
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: PathLike, age: float = 600.0, orphaned_after: float | None = None) -> int:
    """Delete the temporaries of :func:`atomic_write` under ``folder`` (recursively) that no writer will finish:
    those older than ``age`` seconds (younger ones may still be being written), and, with ``orphaned_after``, also
    those whose writer process (the id in the name, :func:`temporary_writer`) no longer runs and that nobody has
    touched for ``orphaned_after`` seconds - what a killed run left behind, so that a rerun which completes a job
    leaves nothing of it. The second rule trusts process ids: use it only for folders whose writers run on this
    machine (in this process-id namespace) and write each file in well under ``orphaned_after`` seconds, as the
    generated dataset's frames are. Returns how many were deleted."""
    folder, now, removed = Path(folder), time.time(), 0
    for path in folder.rglob(".*.tmp*") if folder.is_dir() else ():
        try:
            untouched = now - path.stat().st_mtime
            orphaned = (orphaned_after is not None and untouched > orphaned_after
                        and not _is_running(temporary_writer(path) or 0))
            if is_temporary(path) and (untouched > age or orphaned):
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass  # another process finished or removed it
    return removed
