"""The pose landmarker bundle, built offline from what PyPI wheels ship, and verified on load.

mediapipe 1.2.2 ships no pose weights and no machine here can download the official
``pose_landmarker_*.task`` (DESIGN.md, "Perception facts"). The wheels of mediapipe 0.10.21
(x86-64) and 0.10.18 (aarch64) carry BlazePose's detector and full landmark model as bare
``.tflite`` files. The build:

1. makes a throwaway virtual environment with the pinned old mediapipe (``--no-deps``) and the
   pinned few packages its metadata writer imports;
2. checks the sha256 of the two ``.tflite`` files in that wheel;
3. adds TFLite ``NormalizationOptions`` metadata with that mediapipe's own metadata writer
   (run inside the throwaway environment; 1.2.2's writer does not import);
4. writes the ``.task`` zip itself, with fixed timestamps, so its sha256 is stable, checks it
   against the pinned value and moves it into the user's cache directory;
5. deletes the throwaway environment.

A second build with the bundle already cached only hashes the file. Nothing downloads at run time:
``resolve_model`` only finds and verifies a file.

Command line (what ``scripts/setup.d/10-pose-bundle.sh`` runs)::

    python -m tracker.model_bundle build [--force]
    python -m tracker.model_bundle path
    python -m tracker.model_bundle verify [PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from coachcam.atomic import atomic_open
from coachcam.errors import ModelError

log = logging.getLogger(__name__)

# Members of a pose landmarker .task bundle, as MediaPipe Tasks looks them up.
DETECTOR_MEMBER = "pose_detector.tflite"
LANDMARKS_MEMBER = "pose_landmarks_detector.tflite"
BUNDLE_MEMBERS = (DETECTOR_MEMBER, LANDMARKS_MEMBER)

BUNDLE_NAME = "pose_landmarker_full_offline.task"


@dataclass(frozen=True, slots=True)
class ModelInput:
    """One .tflite file in the old wheel, and the metadata it gets."""

    member: str  # name inside the bundle
    wheel_path: str  # path inside site-packages
    sha256: str
    norm_mean: float
    norm_std: float
    outputs: int  # one feature-output metadata entry per output tensor


INPUTS: tuple[ModelInput, ...] = (
    ModelInput(
        DETECTOR_MEMBER,
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
        127.5,
        127.5,
        2,
    ),
    ModelInput(
        LANDMARKS_MEMBER,
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
        0.0,
        255.0,
        5,
    ),
)

# The old mediapipe that carries the weights, per machine (the .tflite files are identical).
MEDIAPIPE_PIN = {"x86_64": "0.10.21", "aarch64": "0.10.18"}
# What its metadata writer imports (mediapipe is installed --no-deps: its own deps pull jax etc.).
WRITER_REQUIREMENTS = (
    "numpy==1.26.4",
    "flatbuffers==25.12.19",
    "protobuf==4.25.9",
    "absl-py==2.5.1",
    "attrs==26.1.0",
    "opencv-python-headless==4.11.0.86",
    "matplotlib==3.11.2",
)
# sha256 of the bundle this module writes (0.10.21 and 0.10.18 writers give the same bytes).
BUNDLE_SHA256 = "619f9fcbebdf57ade2b2310646e98bcb8b2d36eda084d7ff21972eb4c990eea5"

# Fixed zip entry time (the earliest a zip can hold): the bundle's bytes do not depend on when.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Members start on this boundary so the loader can mmap them (as MediaPipe's own writer does).
_ZIP_ALIGN = 16
_PAD_EXTRA_ID = 0xD935  # the zip "extra field" id Android's zipalign uses for padding

# Runs inside the throwaway environment: argv = src dst name mean std n_outputs.
_METADATA_SCRIPT = """
import sys
from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer as mw
src, dst, name, mean, std, n = sys.argv[1:7]
with open(src, "rb") as f:
    buf = bytearray(f.read())
w = mw.MetadataWriter.create(buf).add_general_info(name, "BlazePose (MediaPipe), coachcam bundle")
w.add_image_input(norm_mean=[float(mean)], norm_std=[float(std)])
for _ in range(int(n)):
    w.add_feature_output()
out, _ = w.populate()
with open(dst, "wb") as f:
    f.write(out)
"""


def machine() -> str:
    """``x86_64`` or ``aarch64`` (the two machines the old wheels exist for)."""
    m = platform.machine().lower()
    if m in ("x86_64", "amd64"):
        return "x86_64"
    if m in ("aarch64", "arm64"):
        return "aarch64"
    raise ModelError(f"no pose-model wheel pinned for machine {m!r} (x86_64 or aarch64 only)")


MODELS_ENV = "COACHCAM_MODELS_DIR"
# Where the installed robot's unit builds and finds the bundle (systemd/coachcam.service sets
# COACHCAM_MODELS_DIR to it; commands run by hand on the robot find it here without the variable).
SYSTEM_MODELS_DIR = Path("/var/cache/coachcam/models")
BUILD_COMMAND = "python -m tracker.model_bundle build"


def user_models_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("coachcam")) / "models"


def model_dirs() -> list[Path]:
    """Where the bundle is looked for, in order: ``$COACHCAM_MODELS_DIR`` alone when set;
    otherwise the system cache (the installed robot's) and then the user's cache."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return [Path(env)]
    return [SYSTEM_MODELS_DIR, user_models_dir()]


def models_dir() -> Path:
    """Where the bundle is (the first of ``model_dirs`` that holds it), else where a build by
    this user puts it (``$COACHCAM_MODELS_DIR`` or the user's cache dir)."""
    dirs = model_dirs()
    for d in dirs:
        if (d / BUNDLE_NAME).exists():
            return d
    return dirs[-1]


def default_bundle_path() -> Path:
    return models_dir() / BUNDLE_NAME


def _not_built() -> ModelError:
    env = os.environ.get(MODELS_ENV)
    where = ", ".join(str(d / BUNDLE_NAME) for d in model_dirs())
    how = (
        f"{MODELS_ENV}={env} is set, so only there"
        if env
        else f"set {MODELS_ENV} to look elsewhere"
    )
    return ModelError(
        f"pose model bundle not built: looked for {where} ({how}); run ./dev setup in a "
        f"checkout, or `{BUILD_COMMAND}` (on the robot, as the README says: `sudo {MODELS_ENV}="
        f"{SYSTEM_MODELS_DIR} /opt/coachcam/venv/bin/{BUILD_COMMAND}`) or set tracker.model "
        "to a pose_landmarker .task file"
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_sha256(path: Path, expected: str, what: str) -> None:
    """Raise ``ModelError`` unless ``path`` exists and has sha256 ``expected``."""
    if not path.is_file():
        raise ModelError(f"{what} missing: {path}")
    got = sha256_file(path)
    if got != expected:
        raise ModelError(f"{what} checksum mismatch: {path} has sha256 {got}, expected {expected}")


def write_bundle(members: Mapping[str, bytes], out: Path | BinaryIO) -> None:
    """Write a .task zip whose bytes depend only on ``members`` (to a path, or a new file).

    Our own writer rather than MediaPipe's: its writer stamps the current time into the zip.
    """
    if isinstance(out, Path):
        with out.open("wb") as f:
            write_bundle(members, f)
        return
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            # Pad the local header's extra field so the data starts on an aligned offset.
            header = 30 + len(name.encode()) + 4
            pad = (-(out.tell() + header)) % _ZIP_ALIGN
            info.extra = struct.pack("<HH", _PAD_EXTRA_ID, pad) + b"\0" * pad
            zf.writestr(info, members[name])


def verify_bundle(path: Path, expected_sha256: str | None = None) -> Path:
    """Check that ``path`` is a pose landmarker bundle; return it.

    Any problem becomes a one-line ``ModelError`` naming the file.
    """
    if not path.exists():
        raise ModelError(f"pose model not found: {path}")
    if not path.is_file():
        raise ModelError(f"pose model is not a file: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"pose model is corrupt (not a .task zip: {exc}): {path}") from None
    missing = [m for m in BUNDLE_MEMBERS if m not in names]
    if missing:
        raise ModelError(
            f"pose model is not a pose landmarker bundle (lacks {', '.join(missing)}): {path}"
        )
    if expected_sha256 is not None:
        got = sha256_file(path)
        if got != expected_sha256:
            raise ModelError(
                f"pose model is corrupt: {path} has sha256 {got}, expected {expected_sha256}; "
                "rebuild it with ./dev setup"
            )
    return path


def resolve_model(model: str = "") -> Path:
    """The verified model file for ``tracker.model`` ('' = the bundle built at set-up)."""
    if not model:
        path = default_bundle_path()
        if not path.exists():
            raise _not_built()
        return verify_bundle(path, BUNDLE_SHA256)
    path = Path(model).expanduser()
    ours = path.name == BUNDLE_NAME
    return verify_bundle(path, BUNDLE_SHA256 if ours else None)


def stage_inputs(site_packages: Path, dest: Path) -> dict[str, Path]:
    """Copy the wheel's two .tflite files to ``dest`` after checking their sha256."""
    staged: dict[str, Path] = {}
    for inp in INPUTS:
        src = site_packages / inp.wheel_path
        check_sha256(src, inp.sha256, f"pose model input {inp.wheel_path}")
        dst = dest / f"raw-{inp.member}"
        shutil.copyfile(src, dst)
        staged[inp.member] = dst
    return staged


def _run(cmd: Sequence[str | Path], what: str) -> None:
    log.debug("running %s", cmd)
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ModelError(f"{what} failed (exit {proc.returncode}): {tail[0]}")


def _make_writer_env(venv: Path, version: str, python: str) -> tuple[Path, Path]:
    """Throwaway venv with the old mediapipe; returns (python, site-packages)."""
    _run([python, "-m", "venv", venv], "creating the model-build environment")
    py = venv / "bin" / "python"
    pip: list[str | Path] = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, "--no-deps", f"mediapipe=={version}"], f"installing mediapipe=={version}")
    _run([*pip, *WRITER_REQUIREMENTS], "installing the metadata writer's requirements")
    out = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return py, Path(out.stdout.strip())


def add_metadata(writer_python: Path, raw: Mapping[str, Path], dest: Path) -> dict[str, bytes]:
    """Each staged .tflite with its NormalizationOptions metadata, by bundle member name."""
    result: dict[str, bytes] = {}
    for inp in INPUTS:
        out = dest / inp.member
        _run(
            [
                writer_python,
                "-c",
                _METADATA_SCRIPT,
                raw[inp.member],
                out,
                inp.member.removesuffix(".tflite"),
                repr(inp.norm_mean),
                repr(inp.norm_std),
                str(inp.outputs),
            ],
            f"adding metadata to {inp.member}",
        )
        result[inp.member] = out.read_bytes()
    return result


def build_bundle(
    out: Path | None = None,
    *,
    force: bool = False,
    python: str = sys.executable,
    expected_sha256: str = BUNDLE_SHA256,
) -> Path:
    """Build the bundle into the cache (or ``out``) unless a verified one is already there."""
    out = out or default_bundle_path()
    if out.exists() and not force:
        try:
            verify_bundle(out, expected_sha256)
            log.info("pose bundle up to date: %s", out)
            return out
        except ModelError as exc:
            log.warning("rebuilding the pose bundle: %s", exc)
    version = MEDIAPIPE_PIN[machine()]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coachcam-bundle-", dir=out.parent) as tmp:
        work = Path(tmp)
        log.info("building the pose bundle with mediapipe==%s in %s", version, work)
        writer_py, site = _make_writer_env(work / "venv", version, python)
        raw = stage_inputs(site, work)
        members = add_metadata(writer_py, raw, work)
        # Durable: minutes of building (and the network) lost to a torn file otherwise.
        with atomic_open(out) as f:
            write_bundle(members, f)
            f.flush()
            got = sha256_file(Path(f.name))
            if got != expected_sha256:  # raised inside: the temp goes, a cached bundle stays
                raise ModelError(
                    f"built pose bundle checksum mismatch: sha256 {got}, "
                    f"expected {expected_sha256}; {out} left as it was"
                )
    log.info("pose bundle built: %s", out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tracker.model_bundle", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the bundle into the cache unless it is there")
    b.add_argument("--force", action="store_true", help="rebuild even if a good one is cached")
    sub.add_parser("path", help="print where the bundle lives")
    v = sub.add_parser("verify", help="verify a bundle (default: the built one)")
    v.add_argument("model", nargs="?", default="")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.cmd == "build":
            print(build_bundle(force=args.force))
        elif args.cmd == "path":
            print(default_bundle_path())
        else:
            print(resolve_model(args.model))
    except ModelError as exc:
        print(f"coachcam: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
