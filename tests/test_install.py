"""``coachcam install`` into a temporary root: systemd-sysusers and systemd-tmpfiles run for real
(``--root``), systemctl is recorded."""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest

from coachcam.cli import main
from coachcam.commands import install
from coachcam.commands.install import Installer
from coachcam.config import load_config
from coachcam.errors import CoachcamError

SYSTEMD = Path(__file__).resolve().parents[1] / "systemd"
UNIT = SYSTEMD / "coachcam.service"
TOOLS = ("systemd-sysusers", "systemd-tmpfiles")
RUN = install.run_command  # the real one, also where a test puts a Recorder in its place
# They chown to root:coachcam and copy /etc/group's owner, so they need root (and Debian's
# systemd package, which ./dev test installs). Without them the commands are only recorded.
REAL_TOOLS = os.geteuid() == 0 and all(shutil.which(t) for t in TOOLS)
needs_tools = pytest.mark.skipif(
    not REAL_TOOLS, reason="needs root and systemd-sysusers/systemd-tmpfiles (apt systemd)"
)


class Recorder:
    """Keeps the commands it was given; runs systemd-sysusers/-tmpfiles (``--root``) for real
    where it can, never systemctl."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, cmd: Sequence[str]) -> None:
        self.commands.append(list(cmd))
        if cmd[0] in TOOLS and REAL_TOOLS:
            assert "--root" in cmd, "a test must never touch this machine's users"
            RUN(cmd)

    def names(self) -> list[str]:
        return [c[0] for c in self.commands]


def entry(root: Path, db: str, name: str) -> list[str]:
    """The fields of ``name`` in ROOT/etc/passwd or ROOT/etc/group."""
    for line in (root / "etc" / db).read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    raise AssertionError(f"{name} not in {db}")


def members(root: Path, group: str) -> list[str]:
    return entry(root, "group", group)[3].split(",")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh Raspberry Pi OS-like root: video and dialout exist, gpio does not."""
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "group").write_text("root:x:0:\ndialout:x:20:\nvideo:x:44:\n")
    (r / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    venv = r / "opt" / "coachcam" / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "coachcam").write_text("#!/bin/sh\n")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = true\n")
    lib = r / "usr" / "lib" / "aarch64-linux-gnu"  # the README's apt step was run
    lib.mkdir(parents=True)
    for soname in install.SHARED_LIBRARIES:
        (lib / soname).write_bytes(b"")
    return r


def apply(inst: Installer) -> list[str]:
    done = []
    for step in inst.plan():
        if step.action is not None:
            step.action()
        done.append(step.what)
    return done


def test_fresh_install_commands(root: Path) -> None:
    rec = Recorder()
    steps = apply(Installer(root, unit_file=UNIT, run=rec))
    r = str(root)
    assert rec.commands == [
        ["systemd-sysusers", "--root", r, "coachcam.conf"],
        ["systemd-tmpfiles", "--create", "--root", r, "coachcam.conf"],
        ["systemctl", f"--root={r}", "enable", "coachcam.service"],
    ]
    assert (
        "create group gpio, create system user coachcam in groups video, gpio, dialout: "
        f"systemd-sysusers --root {r} coachcam.conf" in steps
    )
    for shipped, dest in [("coachcam.sysusers", "sysusers.d"), ("coachcam.tmpfiles", "tmpfiles.d")]:
        conf = root / "etc" / dest / "coachcam.conf"
        assert conf.read_text() == (SYSTEMD / shipped).read_text()
        assert oct(conf.stat().st_mode & 0o777) == "0o644"

    unit = root / "etc/systemd/system/coachcam.service"
    assert unit.read_text() == UNIT.read_text()
    assert oct(unit.stat().st_mode & 0o777) == "0o644"

    key = root / "etc/coachcam/stream-key"
    assert key.read_text() == ""
    assert oct(key.stat().st_mode & 0o777) == "0o600"

    cfg_path = root / "etc/coachcam/coachcam.toml"
    assert oct(cfg_path.stat().st_mode & 0o777) == "0o644"
    cfg = load_config(cfg_path)  # valid, and set up for the robot
    assert cfg.camera.source == "picamera2"
    assert cfg.motor.driver == "serial"
    assert cfg.motor.calibration_file == "/etc/coachcam/calibration.toml"
    assert cfg.stream.credential == "stream-key"
    assert "Generated from the schema" not in cfg_path.read_text()


@needs_tools
def test_fresh_install_makes_the_user_groups_and_directory(root: Path) -> None:
    apply(Installer(root, unit_file=UNIT, run=Recorder()))
    user = entry(root, "passwd", "coachcam")
    group = entry(root, "group", "coachcam")
    assert user[3] == group[2]  # its own group
    assert int(user[2]) < 1000  # a system user
    assert user[4:] == ["coachcam classroom camera", "/var/lib/coachcam", "/usr/sbin/nologin"]
    assert not (root / "var/lib/coachcam").exists()  # StateDirectory=: systemd makes it
    assert entry(root, "group", "video")[2] == "44"  # kept
    assert int(entry(root, "group", "gpio")[2]) < 1000  # missing on this OS: a system group
    for g in ("video", "gpio", "dialout"):
        assert members(root, g) == ["coachcam"]
    # the unit's SupplementaryGroups= are the groups made here (else it fails: 216/GROUP)
    (line,) = [x for x in UNIT.read_text().splitlines() if x.startswith("SupplementaryGroups=")]
    assert line.split("=")[1].split() == list(install.GROUPS)

    etc = (root / "etc/coachcam").stat()  # calibrate gives new files this group (0640)
    assert (oct(etc.st_mode & 0o777), etc.st_uid, etc.st_gid) == ("0o750", 0, int(group[2]))


@needs_tools
def test_second_run_changes_nothing(root: Path) -> None:
    apply(Installer(root, unit_file=UNIT, run=Recorder()))
    dbs = {n: (root / "etc" / n).read_bytes() for n in ("passwd", "group", "shadow", "gshadow")}
    cfg = root / "etc/coachcam/coachcam.toml"
    cfg.write_text('[camera]\nsource = "v4l2"\n')  # the admin's edit is kept
    steps = apply(Installer(root, unit_file=UNIT, run=Recorder()))
    assert {n: (root / "etc" / n).read_bytes() for n in dbs} == dbs
    assert (
        f"user coachcam in groups video, gpio, dialout: exists "
        f"(systemd-sysusers --root {root} coachcam.conf)" in steps
    )
    assert "/etc/sysusers.d/coachcam.conf: up to date" in steps
    assert "/etc/tmpfiles.d/coachcam.conf: up to date" in steps
    assert "unit /etc/systemd/system/coachcam.service: up to date" in steps
    assert cfg.read_text() == '[camera]\nsource = "v4l2"\n'
    assert oct((root / "etc/coachcam").stat().st_mode & 0o777) == "0o750"


@needs_tools
def test_a_robot_installed_by_useradd_is_put_right(root: Path) -> None:
    """An older install (useradd, /etc/coachcam 0755) on Raspberry Pi OS, where gpio exists:
    ids are kept, a missing membership is added, the directory gets its declared mode."""
    with (root / "etc/group").open("a") as f:
        f.write("gpio:x:986:coachcam\ncoachcam:x:994:\n")
    with (root / "etc/passwd").open("a") as f:
        f.write("coachcam:x:999:994::/var/lib/coachcam:/usr/sbin/nologin\n")
    (root / "etc/coachcam").mkdir(mode=0o755)
    steps = apply(Installer(root, unit_file=UNIT, run=Recorder()))
    assert any(s.startswith("add coachcam to video, dialout: systemd-sysusers") for s in steps)
    assert entry(root, "passwd", "coachcam")[2:4] == ["999", "994"]
    assert entry(root, "group", "gpio")[2] == "986"
    assert members(root, "video") == members(root, "dialout") == ["coachcam"]
    etc = (root / "etc/coachcam").stat()
    assert (oct(etc.st_mode & 0o777), etc.st_gid) == ("0o750", 994)


def test_invalid_existing_config_stops_the_install(root: Path) -> None:
    cfg = root / "etc/coachcam/coachcam.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("[camera]\nsorce = 1\n")
    with pytest.raises(CoachcamError, match="sorce"):
        apply(Installer(root, unit_file=UNIT, run=Recorder()))


def test_changed_unit_is_updated(root: Path, tmp_path: Path) -> None:
    apply(Installer(root, unit_file=UNIT, run=Recorder()))
    newer = tmp_path / "coachcam.service"
    newer.write_text(UNIT.read_text() + "# newer\n")
    steps = apply(Installer(root, unit_file=newer, run=Recorder()))
    assert "update unit /etc/systemd/system/coachcam.service" in steps
    assert (root / "etc/systemd/system/coachcam.service").read_text().endswith("# newer\n")


def test_missing_venv_fails_before_changing_anything(root: Path) -> None:
    (root / "opt/coachcam/venv/bin/coachcam").unlink()
    rec = Recorder()
    with pytest.raises(CoachcamError, match="make the venv first"):
        apply(Installer(root, unit_file=UNIT, run=rec))
    assert rec.commands == []
    assert not (root / "etc/coachcam").exists()


def test_venv_without_system_site_packages_is_warned(root: Path) -> None:
    (root / "opt/coachcam/venv/pyvenv.cfg").write_text("include-system-site-packages = false\n")
    steps = apply(Installer(root, unit_file=UNIT, run=Recorder()))
    assert "picamera2 is unseen" in steps[0]


def test_existing_calibration_is_validated(root: Path) -> None:
    cal = root / "etc/coachcam/calibration.toml"
    cal.parent.mkdir(parents=True)
    cal.write_text("not toml [")
    with pytest.raises(CoachcamError, match="calibration"):
        apply(Installer(root, unit_file=UNIT, run=Recorder()))


@needs_tools
def test_an_existing_calibration_only_root_could_read_is_given_to_the_group(root: Path) -> None:
    """Written 0600 root:root by an older calibrate: the service could never read it."""
    from motor.calibration import Calibration, save_calibration

    cal = root / "etc/coachcam/calibration.toml"
    cal.parent.mkdir(parents=True)
    save_calibration(Calibration(), cal)
    os.chown(cal, 0, 0)
    cal.chmod(0o600)
    apply(Installer(root, unit_file=UNIT, run=Recorder()))
    st = cal.stat()
    gid = int(entry(root, "group", "coachcam")[2])
    assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == ("0o640", 0, gid)


def test_live_root_uses_plain_commands(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = Installer(root, unit_file=UNIT, run=Recorder(), start=True)
    monkeypatch.setattr(Installer, "is_live", property(lambda self: True))
    whats = [s.what for s in inst.plan()]
    assert "systemctl daemon-reload" in whats
    assert whats[-1] == "systemctl enable --now coachcam.service"
    assert any(w.endswith(": systemd-sysusers coachcam.conf") for w in whats)
    assert any(w.endswith(": systemd-tmpfiles --create coachcam.conf") for w in whats)
    assert not any("--root" in w for w in whats)


def test_dry_run_prints_and_changes_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert main(["install", "--root", str(root), "--dry-run", "--driver", "gpio"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out
    assert "install /etc/sysusers.d/coachcam.conf (from coachcam.sysusers)" in out
    assert (
        "create group gpio, create system user coachcam in groups video, gpio, dialout: "
        f"systemd-sysusers --root {root} coachcam.conf" in out
    )
    assert (
        f"(d /etc/coachcam 0750 root coachcam -): systemd-tmpfiles --create --root {root} " in out
    )
    assert "servos gpio" in out
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_cli_install_into_root(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recorder()
    monkeypatch.setattr(install, "run_command", rec)
    assert main(["install", "--root", str(root), "--camera", "v4l2"]) == 0
    assert "done." in capsys.readouterr().out
    assert load_config(root / "etc/coachcam/coachcam.toml").camera.source == "v4l2"
    assert rec.names() == ["systemd-sysusers", "systemd-tmpfiles", "systemctl"]


def test_live_install_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(CoachcamError, match="must run as root"):
        install.run(
            install.argparse.Namespace(
                root=Path("/"),
                unit=UNIT,
                camera="picamera2",
                driver="serial",
                now=False,
                dry_run=False,
            )
        )


def test_missing_unit_file_is_named(root: Path, tmp_path: Path) -> None:
    with pytest.raises(CoachcamError, match="--unit"):
        Installer(root, unit_file=tmp_path / "nope.service", run=Recorder()).plan()


def test_set_key_only_touches_its_section() -> None:
    text = "[a]\nx = 1\n\n[b]\nx = 1\n"
    assert tomllib.loads(install.set_key(text, "b", "x", "2")) == {"a": {"x": 1}, "b": {"x": 2}}
    with pytest.raises(CoachcamError):
        install.set_key(text, "c", "x", "2")


def test_pose_model_place_is_reported(root: Path) -> None:
    steps = apply(Installer(root, unit_file=UNIT, run=Recorder()))
    model = next(s for s in steps if s.startswith("pose model"))
    assert "not yet" in model and "COACHCAM_MODELS_DIR=/var/cache/coachcam/models" in model
    # the unit points the daemon at the same place
    assert "Environment=COACHCAM_MODELS_DIR=/var/cache/coachcam/models" in UNIT.read_text()
    bundle = root / "var/cache/coachcam/models/pose_landmarker_full_offline.task"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(b"")
    steps = apply(Installer(root, unit_file=UNIT, run=Recorder()))
    assert any(s.startswith("pose model") and "present" in s for s in steps)


def test_coachcam_is_linked_onto_path(root: Path) -> None:
    apply(Installer(root, unit_file=UNIT, run=Recorder()))
    link = root / "usr/local/bin/coachcam"
    assert os.readlink(link) == "/opt/coachcam/venv/bin/coachcam"
    steps = apply(Installer(root, unit_file=UNIT, run=Recorder()))
    assert "/usr/local/bin/coachcam -> /opt/coachcam/venv/bin/coachcam: exists" in steps
    link.unlink()
    link.write_text("someone else's")
    steps = apply(Installer(root, unit_file=UNIT, run=Recorder()))
    assert "/usr/local/bin/coachcam: something else is there, left alone" in steps


def test_unit_found_in_the_robot_checkout(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install, "__file__", str(root / "site-packages/coachcam/commands/x.py"))
    assert install.default_unit_file(root) == root / "opt/coachcam/src/systemd/coachcam.service"
    assert install.shipped_file("coachcam.sysusers", root) == (
        root / "opt/coachcam/src/systemd/coachcam.sysusers"
    )


def test_the_systemd_files_beside_unit_are_taken(root: Path, tmp_path: Path) -> None:
    """``--unit`` of another checkout: its sysusers and tmpfiles files go with it."""
    other = tmp_path / "other"
    shutil.copytree(SYSTEMD, other)
    (other / "coachcam.tmpfiles").write_text("d /etc/coachcam 0700 root coachcam -\n")
    inst = Installer(root, unit_file=other / "coachcam.service", run=Recorder())
    assert inst.sysusers_file == other / "coachcam.sysusers"
    assert any(s.what.startswith("directories (d /etc/coachcam 0700 ") for s in inst.plan())
    (other / "coachcam.sysusers").unlink()  # not there: the default one
    assert Installer(root, unit_file=other / "coachcam.service").sysusers_file == (
        SYSTEMD / "coachcam.sysusers"
    )


def test_a_missing_shared_library_is_named_with_its_package_before_anything_changes(
    root: Path,
) -> None:
    """Issue 9 item 2: libmediapipe.so needs libEGL; the service would die with an OSError."""
    rec = Recorder()
    inst = Installer(root, unit_file=UNIT, run=rec, has_library=lambda so: so != "libEGL.so.1")
    with pytest.raises(CoachcamError) as err:
        apply(inst)
    msg = str(err.value)
    assert "\n" not in msg
    assert "libEGL.so.1" in msg and "MediaPipe" in msg and msg.endswith("sudo apt install libegl1")
    assert rec.commands == []
    assert not (root / "etc/coachcam").exists()


def test_each_package_is_named_once(root: Path) -> None:
    inst = Installer(root, unit_file=UNIT, run=Recorder(), has_library=lambda so: "gl" not in so)
    step = inst.plan_libraries()
    assert step.what.endswith("sudo apt install libglib2.0-0")  # libglib and libgthread


def test_libraries_are_looked_for_in_the_image_when_installing_into_a_root(root: Path) -> None:
    assert "present" in Installer(root, unit_file=UNIT).plan_libraries().what
    (root / "usr/lib/aarch64-linux-gnu/libxcb.so.1").unlink()
    what = Installer(root, unit_file=UNIT).plan_libraries().what
    assert what.startswith("MISSING") and "libxcb.so.1" in what and "libxcb1" in what


def test_the_live_probe_reads_the_linker_cache() -> None:
    probe = install.ldconfig_probe()
    assert probe("libc.so.6")
    assert not probe("libnot-a-library.so.7")


def test_dry_run_reports_missing_libraries_and_succeeds(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "usr/lib/aarch64-linux-gnu/libGLESv2.so.2").unlink()
    assert main(["install", "--root", str(root), "--dry-run"]) == 0
    assert "MISSING shared libraries libGLESv2.so.2" in capsys.readouterr().out
