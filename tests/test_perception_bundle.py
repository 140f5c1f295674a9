"""The offline pose bundle: deterministic zip, verification errors, the build's checks.

Error paths use small fake inputs, so nothing here installs mediapipe 0.10.x or loads a model.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from coachcam.errors import ModelError
from tracker import model_bundle as mb

MEMBERS = {mb.DETECTOR_MEMBER: b"detector-bytes", mb.LANDMARKS_MEMBER: b"landmarks-bytes!"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "models"
    monkeypatch.setenv("COACHCAM_MODELS_DIR", str(d))
    return d


def test_write_bundle_bytes_depend_only_on_members(tmp_path: Path) -> None:
    a, b = tmp_path / "a.task", tmp_path / "b.task"
    mb.write_bundle(MEMBERS, a)
    mb.write_bundle(dict(reversed(MEMBERS.items())), b)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert [i.filename for i in infos] == sorted(MEMBERS)
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        for i in infos:
            assert zf.read(i) == MEMBERS[i.filename]
    raw = a.read_bytes()
    for name, data in MEMBERS.items():
        assert raw.index(data) % 16 == 0, f"{name} data not aligned"


def test_verify_accepts_a_good_bundle_and_its_checksum(tmp_path: Path) -> None:
    p = tmp_path / "x.task"
    mb.write_bundle(MEMBERS, p)
    assert mb.verify_bundle(p) == p
    assert mb.verify_bundle(p, mb.sha256_file(p)) == p


def test_verify_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"pose model not found: .*nope.task"):
        mb.verify_bundle(tmp_path / "nope.task")


def test_verify_not_a_zip(tmp_path: Path) -> None:
    p = tmp_path / "garbage.task"
    p.write_bytes(b"this is not a zip")
    with pytest.raises(ModelError, match=r"corrupt") as err:
        mb.verify_bundle(p)
    assert "\n" not in str(err.value)


def test_verify_truncated_bundle(tmp_path: Path) -> None:
    p = tmp_path / "cut.task"
    mb.write_bundle(MEMBERS, p)
    p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(ModelError, match=r"corrupt"):
        mb.verify_bundle(p)


def test_verify_wrong_members(tmp_path: Path) -> None:
    p = tmp_path / "other.task"
    mb.write_bundle({"hand_detector.tflite": b"x", mb.LANDMARKS_MEMBER: b"y"}, p)
    with pytest.raises(ModelError, match=f"lacks {mb.DETECTOR_MEMBER}"):
        mb.verify_bundle(p)


def test_verify_bad_checksum(tmp_path: Path) -> None:
    p = tmp_path / "x.task"
    mb.write_bundle(MEMBERS, p)
    with pytest.raises(ModelError, match=r"corrupt: .* has sha256 [0-9a-f]{64}, expected 0{64}"):
        mb.verify_bundle(p, "0" * 64)


def test_resolve_default_not_built(models_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"not built: .* run ./dev setup"):
        mb.resolve_model("")


def test_resolve_default_checks_the_pinned_checksum(models_dir: Path) -> None:
    models_dir.mkdir()
    mb.write_bundle(MEMBERS, models_dir / mb.BUNDLE_NAME)
    with pytest.raises(ModelError, match=r"corrupt"):
        mb.resolve_model("")


def test_resolve_official_path_is_checked_for_members_only(tmp_path: Path) -> None:
    p = tmp_path / "pose_landmarker_lite.task"
    mb.write_bundle(MEMBERS, p)
    assert mb.resolve_model(str(p)) == p
    with pytest.raises(ModelError, match=r"not found"):
        mb.resolve_model(str(tmp_path / "pose_landmarker_heavy.task"))


@pytest.fixture
def fake_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake site-packages holding two small .tflite files, pinned in INPUTS."""
    site = tmp_path / "site"
    inputs = []
    for inp, data in zip(mb.INPUTS, (b"fake detector", b"fake landmarks"), strict=True):
        f = site / inp.wheel_path
        f.parent.mkdir(parents=True)
        f.write_bytes(data)
        inputs.append(mb.ModelInput(inp.member, inp.wheel_path, sha(data), 0.0, 1.0, 1))
    monkeypatch.setattr(mb, "INPUTS", tuple(inputs))
    return site


def test_stage_inputs_copies_checked_files(fake_wheel: Path, tmp_path: Path) -> None:
    staged = mb.stage_inputs(fake_wheel, tmp_path)
    assert staged[mb.DETECTOR_MEMBER].read_bytes() == b"fake detector"


def test_stage_inputs_missing_file(fake_wheel: Path, tmp_path: Path) -> None:
    (fake_wheel / mb.INPUTS[1].wheel_path).unlink()
    with pytest.raises(ModelError, match=r"pose model input .*pose_landmark_full.tflite missing"):
        mb.stage_inputs(fake_wheel, tmp_path)


def test_stage_inputs_bad_checksum(fake_wheel: Path, tmp_path: Path) -> None:
    (fake_wheel / mb.INPUTS[0].wheel_path).write_bytes(b"tampered")
    with pytest.raises(ModelError, match=r"pose_detection.tflite checksum mismatch"):
        mb.stage_inputs(fake_wheel, tmp_path)


@pytest.fixture
def fake_build(fake_wheel: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """build_bundle with the throwaway environment and metadata step replaced; records calls."""
    calls: list[str] = []

    def make_env(venv: Path, version: str, python: str) -> tuple[Path, Path]:
        calls.append(version)
        return Path(python), fake_wheel

    def add_metadata(py: Path, raw: dict[str, Path], dest: Path) -> dict[str, bytes]:
        return {m: p.read_bytes() + b"+metadata" for m, p in raw.items()}

    monkeypatch.setattr(mb, "_make_writer_env", make_env)
    monkeypatch.setattr(mb, "add_metadata", add_metadata)
    return calls


def expected_fake_sha(tmp_path: Path) -> str:
    p = tmp_path / "expected.task"
    mb.write_bundle({mb.DETECTOR_MEMBER: b"fake detector+metadata",
                     mb.LANDMARKS_MEMBER: b"fake landmarks+metadata"}, p)  # fmt: skip
    return mb.sha256_file(p)


def test_build_writes_verified_bundle_then_only_checks(
    fake_build: list[str], models_dir: Path, tmp_path: Path
) -> None:
    want = expected_fake_sha(tmp_path)
    out = mb.build_bundle(expected_sha256=want)
    assert out == models_dir / mb.BUNDLE_NAME
    assert mb.sha256_file(out) == want
    assert len(fake_build) == 1
    mb.build_bundle(expected_sha256=want)  # cached: no second build
    assert len(fake_build) == 1
    assert list(models_dir.iterdir()) == [out]  # the work dir is gone


def test_build_rebuilds_a_corrupt_cached_bundle(
    fake_build: list[str], models_dir: Path, tmp_path: Path
) -> None:
    want = expected_fake_sha(tmp_path)
    models_dir.mkdir()
    (models_dir / mb.BUNDLE_NAME).write_bytes(b"half a download")
    mb.build_bundle(expected_sha256=want)
    assert len(fake_build) == 1
    assert mb.sha256_file(models_dir / mb.BUNDLE_NAME) == want


def test_build_output_checksum_mismatch_leaves_nothing(
    fake_build: list[str], models_dir: Path
) -> None:
    with pytest.raises(ModelError, match=r"built pose bundle checksum mismatch"):
        mb.build_bundle(expected_sha256="f" * 64)
    assert not (models_dir / mb.BUNDLE_NAME).exists()
    assert list(models_dir.iterdir()) == []


def test_build_failing_step_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"^creating the model-build environment failed \(exit"):
        mb._run(["python3", "-c", "import sys; sys.exit('no venv here')"], "creating the "
                "model-build environment")  # fmt: skip


def test_the_built_bundle_matches_its_pin() -> None:
    p = mb.default_bundle_path()
    if not p.exists():
        pytest.skip(f"bundle not built here ({p}); ./dev setup builds it")
    assert mb.sha256_file(p) == mb.BUNDLE_SHA256
