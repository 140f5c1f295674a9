"""Replacing a file atomically: a reader (or a power cut) sees the old file or the new one,
never half of one.

One writer for every file coachcam rewrites (state file, installed files, calibration,
recording sidecars, backfill ledger, caches, the pose bundle). The contract of ``atomic_open``:

- the data goes to a temp file with a unique name (``.NAME.RANDOM.tmp``, created with
  ``O_EXCL``) in the target's own directory, so the final ``rename`` never crosses a file
  system and two writers never share a temp file;
- the temp file gets its access (mode, owner, group) before a byte is written;
- ``durable=True`` (the default) fsyncs the file before the rename and the directory after
  it, so what was written survives a power cut; a caller that passes ``False`` says why;
- ``backup=True`` keeps the previous file whole as ``NAME.bak`` (a hard link, or a copy where
  the file system has none) before the swap;
- on any failure before the rename (including one raised by the caller's own ``with`` body)
  the temp files are removed and the target is left as it was.

Hand-written rather than a library (``atomicwrites`` is unmaintained and knows no backups,
groups or kept owners): the whole job is these few system calls.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_open", "temp_glob", "write_atomic"]


def temp_glob(name_pattern: str) -> str:
    """A glob matching the temp files of targets named ``name_pattern`` (for sweeping the
    debris a crash left behind)."""
    return f".{name_pattern}.*.tmp"


def _temp_name(path: Path) -> Path:
    """A fresh temp name beside ``path``, of the form ``temp_glob`` matches."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def _create_temp(path: Path) -> tuple[Path, BinaryIO]:
    """A new, empty file beside ``path`` that no one else has: random name, ``O_EXCL``.
    Created as ``open()`` would (0o666 less the umask); the caller sets the access it wants."""
    while True:
        tmp = _temp_name(path)
        try:
            return tmp, tmp.open("xb")
        except FileExistsError:  # 1 in 4 billion, or debris: draw again
            continue


def _access_of(path: Path, mode: int | None, keep: bool, dir_group: bool) -> tuple[int, int, int]:
    """(mode or -1, uid or -1, gid or -1) the new file should get; -1 leaves it as created."""
    if keep:
        with contextlib.suppress(FileNotFoundError):
            old = path.stat()
            return stat.S_IMODE(old.st_mode), old.st_uid, old.st_gid
    gid = path.parent.stat().st_gid if dir_group else -1
    return (-1 if mode is None else mode), -1, gid


def _give_access(fd: int, mode: int, uid: int, gid: int) -> None:
    st = os.fstat(fd)
    if uid not in (-1, st.st_uid) or gid not in (-1, st.st_gid):
        os.fchown(fd, uid, gid)  # before the mode: chown may clear set-id bits
    if mode != -1:
        os.fchmod(fd, mode)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_backup(path: Path) -> Path | None:
    """``path`` whole under ``path.bak`` (replaced atomically too); None if there is no file."""
    if not path.exists():
        return None
    backup = path.with_name(path.name + ".bak")
    while True:
        tmp = _temp_name(backup)
        try:
            try:
                os.link(path, tmp)  # the old file under a second name: nothing copied
            except FileExistsError:
                continue
            except OSError:  # no hard links here (e.g. FAT): a copy does the same job
                with path.open("rb") as src, tmp.open("xb") as dst:
                    shutil.copyfileobj(src, dst)
                shutil.copystat(path, tmp)
            os.replace(tmp, backup)
            return backup
        except FileExistsError:
            continue
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def atomic_open(
    path: Path | str,
    *,
    mode: int | None = None,
    keep_access: bool = False,
    dir_group: bool = False,
    backup: bool = False,
    durable: bool = True,
) -> contextlib.AbstractContextManager[BinaryIO]:
    """A binary file to write; when the ``with`` body ends without an exception, it replaces
    ``path`` (whose directory is created if missing).

    ``mode``: permission bits of the new file (``None``: as ``open()`` creates one, 0o666
    less the umask). ``keep_access``: if ``path`` exists, the new file gets its mode, owner and
    group instead (``mode`` is then for a new file only). ``dir_group``: a new file gets its
    directory's group. ``backup``: keep the previous file as ``path.bak``. ``durable``: fsync
    the file and the directory. The yielded file's ``name`` is the temp file's path (e.g. to
    check what was written before it replaces ``path``: raise to abandon it).
    """
    return _atomic_open(Path(path), mode, keep_access, dir_group, backup, durable, [])


@contextlib.contextmanager
def _atomic_open(
    path: Path,
    mode: int | None,
    keep_access: bool,
    dir_group: bool,
    backup: bool,
    durable: bool,
    made: list[Path],
) -> Iterator[BinaryIO]:
    path.parent.mkdir(parents=True, exist_ok=True)
    access = _access_of(path, mode, keep_access, dir_group)
    tmp, f = _create_temp(path)
    try:
        with f:
            _give_access(f.fileno(), *access)
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if backup:
            bak = _keep_backup(path)
            if bak is not None:
                made.append(bak)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        _fsync_dir(path.parent)


def write_atomic(
    path: Path | str,
    data: bytes | str,
    *,
    mode: int | None = None,
    keep_access: bool = False,
    dir_group: bool = False,
    backup: bool = False,
    durable: bool = True,
) -> Path | None:
    """Replace ``path`` with ``data`` (a ``str`` is written as UTF-8), as ``atomic_open``
    does; returns the backup's path when ``backup`` kept one, else None."""
    made: list[Path] = []
    with _atomic_open(Path(path), mode, keep_access, dir_group, backup, durable, made) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return made[0] if made else None
