"""The one atomic writer (``coachcam.atomic``): content, access, backup, durability, and no
temp file left behind whatever fails."""

from __future__ import annotations

import grp
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from coachcam.atomic import atomic_open, temp_glob, write_atomic


def temps(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


def test_content_replaces_the_old_file_and_no_temp_is_left(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"  # the directory is made
    assert write_atomic(path, "one") is None
    assert write_atomic(path, b"two\x00") is None
    assert path.read_bytes() == b"two\x00"
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]


def test_str_is_utf8(tmp_path: Path) -> None:
    write_atomic(tmp_path / "f", "Grüße")
    assert (tmp_path / "f").read_bytes() == "Grüße".encode()


def test_mode_is_set_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "a", "x", mode=0o644)
        write_atomic(tmp_path / "b", "x")  # no mode: as open() would make it
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o7777 == 0o644
    assert (tmp_path / "b").stat().st_mode & 0o7777 == 0o600


def test_mode_replaces_an_existing_files_unless_access_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("old")
    path.chmod(0o600)
    write_atomic(path, "new", mode=0o640, keep_access=True)
    assert path.stat().st_mode & 0o7777 == 0o600, "an existing file keeps its mode"
    write_atomic(path, "new", mode=0o640)
    assert path.stat().st_mode & 0o7777 == 0o640
    write_atomic(tmp_path / "g", "new", mode=0o640, keep_access=True)
    assert (tmp_path / "g").stat().st_mode & 0o7777 == 0o640, "a new one gets mode"


def _other_group() -> int:
    """A group this process may give a file: any, as root; else a supplementary one."""
    mine = os.getegid()
    if os.geteuid() == 0:
        return next((g.gr_gid for g in grp.getgrall() if g.gr_gid != mine), mine)
    return next((g for g in os.getgroups() if g != mine), mine)


def test_kept_owner_and_group_and_a_new_file_gets_the_directorys_group(tmp_path: Path) -> None:
    gid = _other_group()
    if gid == os.getegid():
        pytest.skip("no second group to give a file here")
    d = tmp_path / "etc"
    d.mkdir()
    os.chown(d, -1, gid)
    new = d / "new.toml"
    write_atomic(new, "x", mode=0o640, keep_access=True, dir_group=True)
    assert (new.stat().st_gid, new.stat().st_mode & 0o7777) == (gid, 0o640)

    kept = tmp_path / "kept.toml"  # in a directory of our own group
    kept.write_text("old")
    os.chown(kept, -1, gid)
    kept.chmod(0o604)
    write_atomic(kept, "new", mode=0o640, keep_access=True, dir_group=True)
    st = kept.stat()
    assert (st.st_gid, st.st_mode & 0o7777, kept.read_text()) == (gid, 0o604, "new")

    write_atomic(kept, "newer")  # not kept: the writer's own group
    assert kept.stat().st_gid == os.getegid()


def test_backup_keeps_the_previous_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "cal.toml"
    assert write_atomic(path, "v1", backup=True) is None, "nothing to back up yet"
    assert write_atomic(path, "v2", backup=True) == tmp_path / "cal.toml.bak"
    assert write_atomic(path, "v3", backup=True) == tmp_path / "cal.toml.bak"
    assert (path.read_text(), (tmp_path / "cal.toml.bak").read_text()) == ("v3", "v2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.toml", "cal.toml.bak"]


def test_backup_is_a_copy_where_there_are_no_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cal.toml"
    write_atomic(path, "v1")

    def no_links(*_a: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    write_atomic(path, "v2", backup=True)
    assert (tmp_path / "cal.toml.bak").read_text() == "v1" and path.read_text() == "v2"
    assert temps(tmp_path) == []


@pytest.mark.parametrize("durable", [True, False])
def test_durable_fsyncs_the_file_and_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    write_atomic(tmp_path / "f", "x", durable=durable)
    assert synced == (["file", "dir"] if durable else [])


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_an_injected_failure_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "f"
    write_atomic(path, "old")

    def fail(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", fail)
    if where == "replace":
        monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"), atomic_open(path, backup=True) as f:
        f.write(b"new")
        if where == "write":
            fail()
    assert path.read_text() == "old"
    assert temps(tmp_path) == []


def test_the_with_body_may_abandon_the_write(tmp_path: Path) -> None:
    """What the bundle builder does: check the temp file (by its name), raise to keep the old."""
    path = tmp_path / "bundle.task"
    with pytest.raises(ValueError), atomic_open(path) as f:
        f.write(b"bad")
        f.flush()
        assert Path(f.name).parent == tmp_path and Path(f.name).read_bytes() == b"bad"
        raise ValueError("checksum mismatch")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_leaves_the_old_file_and_no_temp(tiny_tmpfs: Callable[..., Path]) -> None:
    tiny_disk = tiny_tmpfs("64k", covered_by="the injected failures above cover it")
    path = tiny_disk / "ledger.json"
    write_atomic(path, "old")
    (tiny_disk / "filler").write_bytes(b"x" * shutil.disk_usage(tiny_disk).free)
    with pytest.raises(OSError) as exc:
        write_atomic(path, "y" * 100_000, backup=True)
    assert exc.value.errno == 28  # ENOSPC
    assert path.read_text() == "old"
    assert temps(tiny_disk) == []


def test_concurrent_writers_never_share_a_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    n = 8
    names: list[str] = []
    all_open = threading.Barrier(n, timeout=30)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            with atomic_open(path) as f:
                names.append(str(f.name))
                all_open.wait()  # every temp file exists at once
                f.write(f"writer {i}".encode())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(set(names)) == n
    assert all(Path(name).parent == tmp_path for name in names), "same directory: rename"
    assert path.read_text() in {f"writer {i}" for i in range(n)}
    assert temps(tmp_path) == []


def test_temp_glob_matches_the_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "S-000001.json"
    with atomic_open(path) as f:
        assert [p.name for p in tmp_path.glob(temp_glob("*.json"))] == [Path(f.name).name]
        assert not list(tmp_path.glob(temp_glob("backfill-*.json")))
