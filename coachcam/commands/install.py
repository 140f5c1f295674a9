"""``coachcam install``: make this Raspberry Pi a coachcam robot (run as root, once).

Steps, each idempotent (a second run only reports what is already there):

1. checks the virtual environment ``/opt/coachcam/venv`` (made by hand first, see the README's
   "On the robot": it needs ``--system-site-packages`` for apt's picamera2) and the shared
   libraries its wheels load that a minimal Debian lacks (``SHARED_LIBRARIES``: the README's apt
   step installs them); either missing stops the install before anything changes;
2. the system user ``coachcam`` (home ``/var/lib/coachcam``, no login shell) in the groups
   ``video``, ``gpio``, ``dialout`` (a system group is created if this OS lacks one: gpio on plain
   Debian), declared in ``/etc/sysusers.d/coachcam.conf`` (``systemd/coachcam.sysusers``) and made
   by ``systemd-sysusers``; ``/etc/coachcam`` root:coachcam 0750, declared in
   ``/etc/tmpfiles.d/coachcam.conf`` (``systemd/coachcam.tmpfiles``) and made by
   ``systemd-tmpfiles --create``. systemd applies both files again at every boot;
3. ``/etc/coachcam/coachcam.toml``: the documented defaults (``coachcam config --defaults``,
   the same text as config/coachcam.toml) set up for the robot: real camera and servo driver,
   the calibration file, the stream key credential. An existing file is kept and validated;
4. ``/etc/coachcam/stream-key`` (empty, 0600) if absent: systemd's ``LoadCredential=`` refuses
   to start the service when the file is missing;
5. the calibration file's place, ``/etc/coachcam/calibration.toml`` (``coachcam calibrate``
   writes it; validated if present), and the pose model's, ``/var/cache/coachcam/models``;
6. ``/usr/local/bin/coachcam`` -> the venv's, so ``coachcam status`` is on the admin's PATH;
7. the unit into ``/etc/systemd/system`` and ``systemctl enable`` (not started: calibrate first,
   or pass ``--now``).

``--root DIR`` installs into DIR as if it were ``/`` (tests, or an SD card image mounted on a
laptop: ``systemd-sysusers``/``systemd-tmpfiles``/``systemctl --root``); ``--dry-run`` prints the
steps.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from coachcam.atomic import write_atomic
from coachcam.errors import CoachcamError
from coachcam.instance import SERVICE_USER as USER

GROUPS = ("video", "gpio", "dialout")
VENV = Path("/opt/coachcam/venv")
ETC = Path("/etc/coachcam")
CONFIG = ETC / "coachcam.toml"
STREAM_KEY = ETC / "stream-key"
CALIBRATION = ETC / "calibration.toml"
UNIT_NAME = "coachcam.service"
UNIT_DIR = Path("/etc/systemd/system")
# The unit sets COACHCAM_MODELS_DIR to this (CacheDirectory=coachcam).
MODELS = Path("/var/cache/coachcam/models")
# systemd's declarations of the user and groups (sysusers.d) and of /etc/coachcam (tmpfiles.d),
# shipped in systemd/ under these names. In /etc, not /usr/lib: like the unit in /etc/systemd/system
# they are the administrator's files, not a package's.
SYSUSERS_FILE = "coachcam.sysusers"
TMPFILES_FILE = "coachcam.tmpfiles"
SYSUSERS = Path("/etc/sysusers.d/coachcam.conf")
TMPFILES = Path("/etc/tmpfiles.d/coachcam.conf")

Runner = Callable[[Sequence[str]], None]
# Is a shared library (by soname) installed? Injectable, so tests need not remove host libraries.
LibraryProbe = Callable[[str], bool]

# The shared libraries the wheels load that Raspberry Pi OS Lite / a minimal Debian lacks:
# soname -> (Debian package, who loads it). Measured on a debootstrap minbase root: without them
# `import cv2` fails (libxcb.so.1, libGL.so.1, libglib/libgthread) and libmediapipe.so does not
# load (libEGL.so.1, libGLESv2.so.2).
SHARED_LIBRARIES: dict[str, tuple[str, str]] = {
    "libGL.so.1": ("libgl1", "OpenCV (cv2)"),
    "libglib-2.0.so.0": ("libglib2.0-0", "OpenCV (cv2)"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "OpenCV (cv2)"),
    "libxcb.so.1": ("libxcb1", "OpenCV (cv2)"),
    "libEGL.so.1": ("libegl1", "MediaPipe (libmediapipe.so)"),
    "libGLESv2.so.2": ("libgles2", "MediaPipe (libmediapipe.so)"),
}


def run_command(cmd: Sequence[str]) -> None:
    try:
        subprocess.run(list(cmd), check=True)
    except FileNotFoundError:
        raise CoachcamError(f"command not found: {cmd[0]}") from None
    except subprocess.CalledProcessError as exc:
        raise CoachcamError(
            f"`{shlex.join(cmd)}` failed with exit status {exc.returncode}"
        ) from None


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "install",
        parents=[common],
        help="install the daemon on this Raspberry Pi (user, config, systemd unit)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument(
        "--root",
        "--prefix",
        dest="root",
        metavar="DIR",
        type=Path,
        default=Path("/"),
        help="install into DIR as if it were / (default: /)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the steps, change nothing")
    p.add_argument(
        "--camera",
        choices=["picamera2", "v4l2"],
        default="picamera2",
        help="camera.source for a new config (default: picamera2)",
    )
    p.add_argument(
        "--driver",
        choices=["serial", "gpio"],
        default="serial",
        help="motor.driver for a new config (default: serial, a Pololu Maestro)",
    )
    p.add_argument(
        "--unit",
        metavar="PATH",
        type=Path,
        help="unit file to install (default: systemd/coachcam.service of this source tree, "
        "else /opt/coachcam/src/systemd/coachcam.service)",
    )
    p.add_argument("--now", action="store_true", help="also start the service")
    p.set_defaults(func=run)


@dataclass
class Step:
    """One thing the install does (``action``) or only reports (``action`` is None)."""

    what: str
    action: Callable[[], None] | None = None


def under(root: Path, path: Path) -> Path:
    """``path`` (absolute, in the robot's namespace) inside ``root``."""
    return root / path.relative_to("/")


def names_in(db: Path) -> dict[str, list[str]]:
    """Names in an /etc/passwd or /etc/group file -> their fields."""
    try:
        lines = db.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    return {f[0]: f for f in (line.split(":") for line in lines) if f and f[0]}


SOURCE = Path("/opt/coachcam/src")
LINK = Path("/usr/local/bin/coachcam")


def shipped_file(name: str, root: Path = Path("/")) -> Path:
    """``systemd/NAME`` of this source tree (an editable install or a checkout), else of the
    checkout the robot's instructions make in /opt/coachcam/src (pip installs no systemd/)."""
    here = Path(__file__).resolve().parents[2] / "systemd" / name
    return here if here.exists() else under(root, SOURCE / "systemd" / name)


def default_unit_file(root: Path = Path("/")) -> Path:
    return shipped_file(UNIT_NAME, root)


def set_key(text: str, section: str, key: str, value: str) -> str:
    """Replace ``key = ...`` in ``[section]`` of the documented defaults."""
    lines = text.split("\n")
    inside = False
    for i, line in enumerate(lines):
        if line.startswith("["):
            inside = line.strip() == f"[{section}]"
        elif inside and re.match(rf"{re.escape(key)}\s*=", line):
            lines[i] = f"{key} = {value}"
            return "\n".join(lines)
    raise CoachcamError(f"no key {section}.{key} in the default config")


def robot_config(camera: str, driver: str) -> str:
    """The documented defaults, set up for the robot."""
    from coachcam.config import parse_config
    from coachcam.configdoc import HEADER, render_defaults

    text = render_defaults().removeprefix(HEADER)
    text = set_key(text, "camera", "source", f'"{camera}"')
    text = set_key(text, "motor", "driver", f'"{driver}"')
    text = set_key(text, "motor", "calibration_file", f'"{CALIBRATION}"')
    text = set_key(text, "stream", "credential", '"stream-key"')
    header = (
        "# coachcam on this robot, written by `coachcam install`. Edit and then\n"
        "#   sudo coachcam config --config /etc/coachcam/coachcam.toml && "
        "sudo systemctl restart coachcam\n"
        "# The stream key goes in /etc/coachcam/stream-key (root, 0600), never in this file.\n"
        "# Every key is listed with its default and what it means; unknown keys are rejected.\n"
    )
    parse_config(tomllib.loads(text), "robot config")  # raises ConfigError if a key moved
    return header + text


def files_probe(root: Path) -> LibraryProbe:
    """Look for the library file in ``root``'s library directories (an SD card image)."""
    dirs = [root / d for d in ("lib", "usr/lib", "usr/local/lib")]
    dirs += [m for d in dirs if d.is_dir() for m in d.glob("*-linux-gnu*") if m.is_dir()]
    return lambda soname: any((d / soname).exists() for d in dirs)


def ldconfig_probe() -> LibraryProbe:
    """The dynamic linker's cache (``ldconfig -p``): what the daemon's imports will find."""
    exe = "/sbin/ldconfig" if Path("/sbin/ldconfig").exists() else "ldconfig"
    try:
        out = subprocess.run([exe, "-p"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return files_probe(Path("/"))
    names = {line.split(" (", 1)[0].strip() for line in out.splitlines()[1:]}
    return names.__contains__


def missing_libraries(probe: LibraryProbe) -> list[str]:
    """Sonames of ``SHARED_LIBRARIES`` that ``probe`` does not find."""
    return [soname for soname in SHARED_LIBRARIES if not probe(soname)]


def write_file(path: Path, text: str, mode: int) -> None:
    """Write atomically and durably (the config, key and unit must survive a power cut right
    after the install) with ``mode``."""
    write_atomic(path, text, mode=mode)


class Installer:
    """Plans the install against ``root``; ``run`` executes commands (fake it in tests)."""

    def __init__(
        self,
        root: Path = Path("/"),
        *,
        unit_file: Path | None = None,
        camera: str = "picamera2",
        driver: str = "serial",
        start: bool = False,
        run: Runner | None = None,
        has_library: LibraryProbe | None = None,
    ) -> None:
        self.root = root
        self.unit_file = unit_file if unit_file is not None else default_unit_file(root)
        self.sysusers_file = self._beside_unit(SYSUSERS_FILE)
        self.tmpfiles_file = self._beside_unit(TMPFILES_FILE)
        self.camera = camera
        self.driver = driver
        self.start = start
        self.run = run if run is not None else run_command
        self.has_library = has_library

    @property
    def is_live(self) -> bool:
        """Installing into the running system (not into a directory)."""
        return self.root.resolve() == Path("/")

    def p(self, path: Path) -> Path:
        return under(self.root, path)

    def root_args(self) -> list[str]:
        return [] if self.is_live else ["--root", str(self.root)]

    def _beside_unit(self, name: str) -> Path:
        """A file of systemd/: beside the unit being installed (``--unit``), else the default."""
        there = self.unit_file.parent / name
        return there if there.exists() else shipped_file(name, self.root)

    def plan(self) -> list[Step]:
        # The venv first: if it is missing, fail before changing anything.
        return [
            self.plan_venv(),
            self.plan_libraries(),
            *self.plan_user(),
            *self.plan_etc(),
            *self.plan_config(),
            self.plan_calibration(),
            self.plan_model(),
            self.plan_link(),
            *self.plan_unit(),
        ]

    def plan_user(self) -> list[Step]:
        """The user and its groups as /etc/sysusers.d/coachcam.conf declares them, made by
        systemd-sysusers, which only adds what is missing (a second run changes nothing)."""
        # The file's name, not its path: systemd-sysusers (and -tmpfiles) look a bare name up in
        # the root's sysusers.d directories, /etc first; systemd 252 would not put an absolute
        # path under --root.
        cmd = ["systemd-sysusers", *self.root_args(), SYSUSERS.name]
        groups = names_in(self.p(Path("/etc/group")))
        new_groups = [f"create group {g}" for g in GROUPS if g not in groups]
        if USER not in names_in(self.p(Path("/etc/passwd"))):
            todo = [*new_groups, f"create system user {USER} in groups {', '.join(GROUPS)}"]
        else:
            outside = [g for g in GROUPS if g in groups and USER not in groups[g][-1].split(",")]
            todo = new_groups + ([f"add {USER} to {', '.join(outside)}"] if outside else [])
        what = (
            f"{', '.join(todo)}: {shlex.join(cmd)}"
            if todo
            else f"user {USER} in groups {', '.join(GROUPS)}: exists ({shlex.join(cmd)})"
        )
        return [self.plan_copy(self.sysusers_file, SYSUSERS), Step(what, self._cmd(cmd))]

    def plan_venv(self) -> Step:
        exe = self.p(VENV / "bin" / "coachcam")
        if not exe.exists():
            return Step(
                f"MISSING {VENV}/bin/coachcam: make the venv first (README, On the robot):\n"
                f"    python3 -m venv --system-site-packages {VENV}\n"
                f"    {VENV}/bin/pip install '/path/to/coachcam[pi]'",
                self._fail(f"{VENV}/bin/coachcam not found: make the venv first (see --dry-run)"),
            )
        cfg = self.p(VENV / "pyvenv.cfg")
        system = "include-system-site-packages = true" in (
            cfg.read_text(encoding="utf-8") if cfg.exists() else ""
        )
        note = "" if system else " (WARNING: no --system-site-packages: apt's picamera2 is unseen)"
        return Step(f"venv {VENV}: present{note}")

    def plan_libraries(self) -> Step:
        probe = self.has_library
        if probe is None:
            probe = ldconfig_probe() if self.is_live else files_probe(self.root)
        missing = missing_libraries(probe)
        if not missing:
            return Step(f"shared libraries the wheels load: present ({len(SHARED_LIBRARIES)})")
        packages = sorted({SHARED_LIBRARIES[m][0] for m in missing})
        users = sorted({SHARED_LIBRARIES[m][1] for m in missing})
        detail = (
            f"{', '.join(missing)} (needed by {' and '.join(users)}): "
            f"sudo apt install {' '.join(packages)}"
        )
        return Step(f"MISSING shared libraries {detail}", self._fail(f"missing libraries {detail}"))

    def plan_config(self) -> list[Step]:
        steps = []
        cfg = self.p(CONFIG)
        if cfg.exists():
            steps.append(Step(f"config {CONFIG}: exists, kept", self._validate_config(cfg)))
        else:
            text = robot_config(self.camera, self.driver)
            steps.append(
                Step(
                    f"write {CONFIG} (camera {self.camera}, servos {self.driver}; 0644)",
                    lambda: write_file(cfg, text, 0o644),
                )
            )
        key = self.p(STREAM_KEY)
        if key.exists():
            steps.append(Step(f"stream key {STREAM_KEY}: exists, kept"))
        else:
            steps.append(
                Step(
                    f"create empty {STREAM_KEY} (0600; put the stream key in it)",
                    lambda: write_file(key, "", 0o600),
                )
            )
        return steps

    def plan_etc(self) -> list[Step]:
        """/etc/coachcam root:coachcam 0750, as /etc/tmpfiles.d/coachcam.conf declares it, made
        (or its mode and owner put right) by systemd-tmpfiles: `coachcam calibrate` gives a new
        calibration file its directory's group (mode 0640), so the service can read what root
        calibrated."""
        copy = self.plan_copy(self.tmpfiles_file, TMPFILES)
        lines = self.tmpfiles_file.read_text(encoding="utf-8").splitlines()
        declared = "; ".join(ln for ln in lines if ln.strip() and not ln.startswith("#"))
        cmd = ["systemd-tmpfiles", "--create", *self.root_args(), TMPFILES.name]
        return [copy, Step(f"directories ({declared}): {shlex.join(cmd)}", self._cmd(cmd))]

    def plan_copy(self, src: Path, dest: Path) -> Step:
        """Install ``src``, a file of systemd/, as ``dest`` (0644), or say it is up to date."""
        try:
            text = src.read_text(encoding="utf-8")
        except OSError:
            raise CoachcamError(
                f"{src.name} not found: {src} (it is looked for beside --unit, then in "
                "systemd/ of the coachcam source)"
            ) from None
        target = self.p(dest)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            return Step(f"{dest}: up to date")
        verb = "update" if target.exists() else "install"
        return Step(f"{verb} {dest} (from {src.name})", lambda: write_file(target, text, 0o644))

    def plan_calibration(self) -> Step:
        cal = self.p(CALIBRATION)
        if not cal.exists():
            return Step(
                f"calibration {CALIBRATION}: not yet; run "
                f"`sudo coachcam calibrate axis --axis pan --guided --config {CONFIG}`, "
                "then --axis tilt, before following anyone"
            )

        def check() -> None:
            from motor.calibration import load_calibration

            load_calibration(cal, missing_ok=False)
            # An older calibrate wrote it 0600 root:root: give it the directory's group, g+r.
            st, gid = cal.stat(), self.p(ETC).stat().st_gid
            if st.st_gid != gid:
                os.chown(cal, -1, gid)
            os.chmod(cal, (st.st_mode & 0o7707) | 0o040)

        return Step(
            f"calibration {CALIBRATION}: exists, validated, readable by group {USER}", check
        )

    def plan_model(self) -> Step:
        from tracker.model_bundle import BUNDLE_NAME

        bundle = MODELS / BUNDLE_NAME
        if self.p(bundle).exists():
            return Step(f"pose model {bundle}: present (verified at every start)")
        return Step(
            f"pose model {bundle}: not yet; build it once (needs PyPI):\n"
            f"    sudo COACHCAM_MODELS_DIR={MODELS} {VENV}/bin/python -m tracker.model_bundle build"
        )

    def plan_link(self) -> Step:
        """``coachcam`` on the admin's PATH, so ``coachcam status`` just works."""
        link = self.p(LINK)
        target = VENV / "bin" / "coachcam"
        if link.is_symlink() and Path(os.readlink(link)) == target:
            return Step(f"{LINK} -> {target}: exists")
        if link.exists() or link.is_symlink():
            return Step(f"{LINK}: something else is there, left alone")

        def make() -> None:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)

        return Step(f"link {LINK} -> {target}", make)

    def plan_unit(self) -> list[Step]:
        try:
            text = self.unit_file.read_text(encoding="utf-8")
        except OSError:
            raise CoachcamError(
                f"unit file not found: {self.unit_file} (pass --unit PATH to "
                "systemd/coachcam.service of the coachcam source)"
            ) from None
        dest = self.p(UNIT_DIR / UNIT_NAME)
        steps = []
        if dest.exists() and dest.read_text(encoding="utf-8") == text:
            steps.append(Step(f"unit {UNIT_DIR / UNIT_NAME}: up to date"))
        else:
            verb = "update" if dest.exists() else "install"
            steps.append(
                Step(f"{verb} unit {UNIT_DIR / UNIT_NAME}", lambda: write_file(dest, text, 0o644))
            )
        if self.is_live:
            steps.append(Step("systemctl daemon-reload", self._cmd(["systemctl", "daemon-reload"])))
            enable = ["systemctl", "enable", *(["--now"] if self.start else []), UNIT_NAME]
        else:
            enable = ["systemctl", f"--root={self.root}", "enable", UNIT_NAME]
        steps.append(Step(shlex.join(enable), self._cmd(enable)))
        return steps

    def _cmd(self, cmd: list[str]) -> Callable[[], None]:
        return lambda: self.run(cmd)

    @staticmethod
    def _fail(message: str) -> Callable[[], None]:
        def fail() -> None:
            raise CoachcamError(message)

        return fail

    @staticmethod
    def _validate_config(path: Path) -> Callable[[], None]:
        def check() -> None:
            from coachcam.config import load_config

            load_config(path)

        return check


def run(args: argparse.Namespace) -> int:
    inst = Installer(
        args.root, unit_file=args.unit, camera=args.camera, driver=args.driver, start=args.now
    )
    if not args.dry_run and inst.is_live and os.geteuid() != 0:
        raise CoachcamError("coachcam install must run as root (sudo), or use --dry-run")
    steps = inst.plan()
    where = "" if inst.is_live else f" into {args.root}"
    print(f"coachcam install{where}{' (dry run: nothing changes)' if args.dry_run else ''}:")
    for step in steps:
        print(f"  {step.what}")
        if step.action is not None and not args.dry_run:
            try:
                step.action()
            except CoachcamError:
                raise
            except OSError as exc:
                raise CoachcamError(f"{step.what.splitlines()[0]}: {exc}") from None
    if not args.dry_run:
        print("done. Next: edit /etc/coachcam/coachcam.toml, calibrate, then")
        print("  sudo systemctl start coachcam && coachcam status")
    return 0
