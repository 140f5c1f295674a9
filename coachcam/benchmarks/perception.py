"""``coachcam bench perception``: what the real pose model sees, how far, at what cost.

Two kinds of input:

- **the shared media** (``../shared/data/media``): the podium clip (1 person) and the two-people
  clip (2 people); poses per frame vs people present and ms per frame, whole-frame detection
  every frame vs steady tracking by crops (each frame looks only around the people found in the
  previous frame; the whole frame when nobody is known or someone was lost).
- **rendered scenes**: a person cut out of the media (a rectangle around them, so their own
  background comes along), scaled to 80-400 px tall and walked across a 1280x720 synthetic room.
  Teacher recall by apparent height for three ways of looking: "whole" (one whole-frame pass,
  the baseline), "search" (what the detector does with nobody tracked: whole frame, masked
  passes, one re-acquisition tile per frame) and "crop" (around where the tracker predicts the
  teacher: the previous frame's true box, one frame of lag). Also the frames a search from cold
  needs to find them, and poses per frame with 1-3 people side by side.

"Found" means a pose whose shoulder midpoint lies inside the true box grown by 10%. Timings are
wall-clock ms of ``detect()`` (median, first frames of each detector left out) on this machine,
whatever else it is doing; the ways of looking take turns frame by frame, so compare within a run.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coachcam.errors import ConfigError
from coachcam.frame import Frame

log = logging.getLogger(__name__)

WARM_UP = 3  # frames per detector left out of timings
HEIGHTS = (80, 100, 120, 150, 200, 250, 300, 400)
WIDTH, HEIGHT = 1280, 720
Box = tuple[float, float, float, float]


def register(bsub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = bsub.add_parser(
        "perception",
        parents=[common],
        help="pose model recall by apparent height, poses per frame, cost of crops vs whole frame",
    )
    p.add_argument(
        "--media",
        type=Path,
        default=Path("../shared/data/media"),
        help="folder with the shared media (default ../shared/data/media)",
    )
    p.add_argument("--frames", type=int, default=30, help="frames per rendered walk (default 30)")
    p.add_argument(
        "--heights",
        default=",".join(str(h) for h in HEIGHTS),
        help="apparent heights (px) of the rendered teacher, comma-separated",
    )
    p.add_argument("--media-step", type=int, default=2, help="use every Nth media frame (2)")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="also write all figures")
    p.set_defaults(func=run)


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts and timings of one way of looking at one input."""

    frames: int = 0
    found: int = 0
    poses: int = 0
    ms: list[float] = field(default_factory=list)
    first_found: int | None = None

    @property
    def recall(self) -> float:
        return 100.0 * self.found / self.frames if self.frames else 0.0

    @property
    def poses_per_frame(self) -> float:
        return self.poses / self.frames if self.frames else 0.0

    @property
    def ms_median(self) -> float:
        """Median, not mean: other work on the machine adds spikes, not a shift."""
        return statistics.median(self.ms) if self.ms else 0.0

    def add(self, found: bool, poses: int, ms: float) -> None:
        if found and self.first_found is None:
            self.first_found = self.frames
        # The first frames load the landmarker's graph: leave them out of the steady cost.
        if self.frames >= WARM_UP:
            self.ms.append(ms)
        self.frames += 1
        self.found += int(found)
        self.poses += poses

    def merge(self, other: Tally) -> None:
        self.frames += other.frames
        self.found += other.found
        self.poses += other.poses
        self.ms.extend(other.ms)

    def summary(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "recall_pct": round(self.recall, 1),
            "poses_per_frame": round(self.poses_per_frame, 2),
            "ms_per_frame": round(self.ms_median, 1),
            "first_found_frame": self.first_found,
        }


def _timed_detect(det: Any, frame: Frame, rois: Sequence[Any] = ()) -> tuple[Any, float]:
    t0 = time.perf_counter()
    d = det.detect(frame, rois)
    return d, 1000.0 * (time.perf_counter() - t0)


def _shoulder_mid(pose: Any) -> np.ndarray:
    from tracker.types import SHOULDERS

    return np.asarray(pose.keypoints[list(SHOULDERS), :2].mean(axis=0))


def _found(poses: Sequence[Any], box: Box) -> bool:
    x0, y0, x1, y1 = box
    mx, my = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    for p in poses:
        x, y = _shoulder_mid(p)
        if x0 - mx <= x <= x1 + mx and y0 - my <= y <= y1 + my:
            return True
    return False


def _grow(box: Box, k: float, w: int, h: int) -> Box:
    x0, y0, x1, y1 = box
    dx, dy = k * (x1 - x0), k * (y1 - y0)
    return (max(0.0, x0 - dx), max(0.0, y0 - dy), min(float(w), x1 + dx), min(float(h), y1 + dy))


# -- inputs --------------------------------------------------------------------------------------


def read_video(path: Path, step: int) -> Iterator[tuple[int, float, np.ndarray]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    i = 0
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                return
            if i % step == 0:
                yield i, i / fps, img
            i += 1
    finally:
        cap.release()


def synthetic_room(seed: int = 0) -> np.ndarray:
    """A plain classroom-like background: wall gradient, a board, desks, sensor noise."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, HEIGHT)[:, None, None]
    wall = (np.array([170, 180, 190]) * (1 - 0.3 * y)).astype(np.float32)
    img = np.broadcast_to(wall, (HEIGHT, WIDTH, 3)).copy()
    img[120:330, 200:1080] = (60, 80, 50)  # board
    img[520:, :] = (90, 110, 140)  # floor
    for x in range(60, WIDTH - 160, 260):
        img[560:620, x : x + 160] = (50, 80, 120)  # desks
    img += rng.normal(0.0, 4.0, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def cutout(image: np.ndarray, box: Box, margin: float = 0.1) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in _grow(box, margin, w, h))
    return image[y0:y1, x0:x1].copy()


def paste(canvas: np.ndarray, person: np.ndarray, height: int, x: int, bottom: int) -> Box:
    """Paste ``person`` scaled to ``height`` px with its bottom-left at (x, bottom); its box."""
    import cv2

    k = height / person.shape[0]
    small = cv2.resize(
        person,
        (max(1, round(person.shape[1] * k)), height),
        interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
    )
    y0 = max(0, bottom - height)
    x = max(0, min(x, WIDTH - small.shape[1]))
    part = small[: bottom - y0, : WIDTH - x]
    canvas[y0 : y0 + part.shape[0], x : x + part.shape[1]] = part
    return (float(x), float(y0), float(x + part.shape[1]), float(y0 + part.shape[0]))


# -- the runs -------------------------------------------------------------------------------------


# Ways of looking, as config changes. "whole": one whole-frame pass, the baseline; "search": what
# the detector does with nobody tracked (whole frame, masked passes, a tile); "crop": around rois.
PLAIN = {"reacquire": "off", "extra_passes": 0}
MODES: dict[str, dict[str, Any]] = {"whole": PLAIN, "search": {}, "crop": PLAIN}


def _detector(cfg: Any, **changes: Any) -> Any:
    from tracker.mediapipe_detector import MediaPipePoseDetector

    return MediaPipePoseDetector(cfg.model_copy(update=changes))


def media_rows(cfg: Any, media: Path, step: int) -> list[dict[str, Any]]:
    """Whole frame every frame vs crops around everyone vs steady tracking of the teacher.

    "steady" is what the daemon does once it follows someone: one crop around the teacher
    (``tracker.rois.teacher_rois``), the whole frame only when they are lost. Its teacher is
    the tallest person at the start, then whoever is nearest the last box. All four ways run on
    each frame in turn, so a busy machine slows them alike.
    """
    from tracker.types import Roi

    rows = []
    for name, present in (("podium_speaker_720p30.mp4", 1), ("two_people_bridge_1080p24.mp4", 2)):
        whole, search, crop, steady = Tally(), Tally(), Tally(), Tally()
        last: list[Box] = []
        teacher: Box | None = None
        with ExitStack() as stack:
            wdet, sdet, cdet, tdet = (
                stack.enter_context(_detector(cfg, **MODES[m])) for m in (*MODES, "crop")
            )
            for i, t, img in read_video(media / name, step):
                f = Frame(i, t, img.shape[1], img.shape[0], image=img)
                d, ms = _timed_detect(wdet, f)
                whole.add(len(d.poses) >= present, len(d.poses), ms)
                d, ms = _timed_detect(sdet, f)
                search.add(len(d.poses) >= present, len(d.poses), ms)
                d, ms = _timed_detect(cdet, f, [Roi(*b) for b in last])
                crop.add(len(d.poses) >= present, len(d.poses), ms)
                found = _boxes(cfg, d.poses)
                # Someone lost: look at the whole frame next time (as a tracker searching would).
                last = found if len(found) >= len(last) else []
                d, ms = _timed_detect(tdet, f, [Roi(*teacher)] if teacher else [])
                teacher = _follow(teacher, _boxes(cfg, d.poses))
                steady.add(teacher is not None, len(d.poses), ms)
        rows.append(
            {
                "input": name,
                "people": present,
                "whole": whole.summary(),
                "search": search.summary(),
                "crop": crop.summary(),
                "steady": steady.summary(),
                "crop_cost_ratio": round(crop.ms_median / whole.ms_median, 2),
                "steady_cost_ratio": round(steady.ms_median / whole.ms_median, 2),
            }
        )
    return rows


def _boxes(cfg: Any, poses: Sequence[Any]) -> list[Box]:
    return [b for b in (p.bbox(cfg.min_visibility) for p in poses) if b]


def _follow(teacher: Box | None, boxes: list[Box]) -> Box | None:
    """The box that is the teacher now: nearest the last one (tallest at the start)."""
    if not boxes:
        return None
    if teacher is None:
        return max(boxes, key=lambda b: b[3] - b[1])
    cx, cy = (teacher[0] + teacher[2]) / 2, (teacher[1] + teacher[3]) / 2
    return min(boxes, key=lambda b: abs((b[0] + b[2]) / 2 - cx) + abs((b[1] + b[3]) / 2 - cy))


def person_cutouts(cfg: Any, media: Path) -> list[tuple[str, np.ndarray]]:
    """People cut out of the first frames of the clips (boxes from the model itself)."""
    cuts = []
    for name in ("podium_speaker_720p30.mp4", "two_people_bridge_1080p24.mp4"):
        _, t, img = next(read_video(media / name, 1))
        # One detector per clip: a VIDEO-mode landmarker would carry its tracked pose across.
        with _detector(cfg, **PLAIN) as det:
            d = det.detect(Frame(0, t, img.shape[1], img.shape[0], image=img))
            for k, pose in enumerate(sorted(d.poses, key=lambda p: float(_shoulder_mid(p)[0]))):
                box = pose.bbox(cfg.min_visibility)
                if box is not None:
                    cuts.append((f"{name.split('_')[0]}{k}", cutout(img, box)))
    if not cuts:
        raise ConfigError(f"no person found in the media under {media}")
    return cuts


WALK_M_S = 1.5  # a brisk teacher's walk
PERSON_M = 1.7  # the height the apparent height stands for


def walk(
    person: np.ndarray, height: int, frames: int, room: np.ndarray, start_x: int
) -> Iterator[tuple[np.ndarray, Box]]:
    """The person walking right at ``WALK_M_S`` (30 fps), bottom on the floor line, turning
    back at the wall."""
    step = WALK_M_S * (height / PERSON_M) / 30.0
    x, direction = float(start_x), 1.0
    for _ in range(frames):
        canvas = room.copy()
        box = paste(canvas, person, height, int(x), bottom=560)
        yield canvas, box
        if box[2] + step >= WIDTH or box[0] - step <= 0:
            direction = -direction
        x = box[0] + direction * step


def height_rows(
    cfg: Any, cuts: list[tuple[str, np.ndarray]], heights: Sequence[int], frames: int
) -> list[dict[str, Any]]:
    """Recall by apparent height; the three ways of looking take turns on each frame."""
    from tracker.types import Roi

    room = synthetic_room()
    rows = []
    for h in heights:
        tallies = {m: Tally() for m in MODES}
        cold: list[int | None] = []
        for n, (name, person) in enumerate(cuts):
            log.info("height %s px, %s", h, name)
            per = {m: Tally() for m in MODES}
            with ExitStack() as stack:
                dets = {m: stack.enter_context(_detector(cfg, **c)) for m, c in MODES.items()}
                prev: Box | None = None
                for k, (img, box) in enumerate(walk(person, h, frames, room, 100 + 330 * n)):
                    f = Frame(k, k / 30.0, WIDTH, HEIGHT, image=img)
                    for m, det in dets.items():
                        rois = [Roi(*(prev or box))] if m == "crop" else []
                        d, ms = _timed_detect(det, f, rois)
                        per[m].add(_found(d.poses, box), len(d.poses), ms)
                    prev = box
            for m, t in tallies.items():
                t.merge(per[m])
            cold.append(per["search"].first_found)
        rows.append(
            {
                "height_px": h,
                **{m: t.summary() for m, t in tallies.items()},
                "search_first_found": cold,
            }
        )
    return rows


def crowd_rows(
    cfg: Any, cuts: list[tuple[str, np.ndarray]], frames: int = 12
) -> list[dict[str, Any]]:
    """Poses per frame with 1-3 people standing side by side, at two heights."""
    room = synthetic_room()
    rows = []
    for h in (300, 150):
        for n in (1, 2, 3):
            canvas = room.copy()
            boxes = [
                paste(canvas, cuts[k % len(cuts)][1], h, 120 + k * 380, bottom=560)
                for k in range(n)
            ]
            row: dict[str, Any] = {"height_px": h, "people": n}
            for mode in ("whole", "search", "masked"):
                t = Tally()
                seen: set[int] = set()
                changes = {"extra_passes": 2} if mode == "masked" else MODES[mode]
                with _detector(cfg, **changes) as det:
                    for k in range(frames):
                        d, ms = _timed_detect(det, Frame(k, k / 30.0, WIDTH, HEIGHT, image=canvas))
                        t.add(len(d.poses) >= n, len(d.poses), ms)
                        seen |= {j for j, b in enumerate(boxes) if _found(d.poses, b)}
                row[mode] = {**t.summary(), "people_seen": len(seen)}
            rows.append(row)
    return rows


# -- output ---------------------------------------------------------------------------------------


def format_tables(res: dict[str, Any]) -> str:
    out = [
        "Shared media: whole frame every frame, crops around everyone, and steady tracking (one",
        "crop around the teacher, as the daemon does): poses per frame or teacher found %, ms",
        f"{'input':30} {'people':>6} {'whole poses/f':>13} {'ms':>5} "
        f"{'search poses/f':>14} {'ms':>5} {'crops poses/f':>13} {'ms':>5} {'/whole':>6} "
        f"{'steady teacher%':>15} {'ms':>5} {'/whole':>6}",
    ]
    for r in res["media"]:
        w, s, c, t = r["whole"], r["search"], r["crop"], r["steady"]
        out.append(
            f"{r['input']:30} {r['people']:>6} {w['poses_per_frame']:>13} {w['ms_per_frame']:>5} "
            f"{s['poses_per_frame']:>14} {s['ms_per_frame']:>5} "
            f"{c['poses_per_frame']:>13} {c['ms_per_frame']:>5} {r['crop_cost_ratio']:>6} "
            f"{t['recall_pct']:>15} {t['ms_per_frame']:>5} {r['steady_cost_ratio']:>6}"
        )
    out += [
        "",
        "Rendered 1280x720 room, teacher walking: recall % by apparent height (ms per frame)",
        f"{'height px':>9} {'whole':>15} {'search':>15} {'crop':>15} {'crop/whole':>10} "
        f"{'search from cold: frames to find':>34}",
    ]
    for r in res["heights"]:
        cells = [
            f"{r[m]['recall_pct']:5.1f} ({r[m]['ms_per_frame']:4.1f})"
            for m in ("whole", "search", "crop")
        ]
        ratio = r["crop"]["ms_per_frame"] / max(r["whole"]["ms_per_frame"], 1e-9)
        # Where whole-frame detection finds nobody it skips the landmark model: no fair ratio.
        shown = f"{ratio:.2f}" if r["whole"]["recall_pct"] >= 50 else "-"
        cold = ", ".join("-" if c is None else str(c) for c in r["search_first_found"])
        out.append(
            f"{r['height_px']:>9} {cells[0]:>15} {cells[1]:>15} {cells[2]:>15} "
            f"{shown:>10} {cold:>34}"
        )
    out += [
        "",
        "People side by side: poses per frame, and people seen at least once in 12 frames",
        f"{'height px':>9} {'people':>6} {'whole poses/f':>13} {'seen':>4} "
        f"{'search poses/f':>14} {'seen':>4} {'+masked poses/f':>15} {'seen':>4}",
    ]
    for r in res["crowd"]:
        w, t, m = r["whole"], r["search"], r["masked"]
        out.append(
            f"{r['height_px']:>9} {r['people']:>6} {w['poses_per_frame']:>13} "
            f"{w['people_seen']:>4} {t['poses_per_frame']:>14} {t['people_seen']:>4} "
            f"{m['poses_per_frame']:>15} {m['people_seen']:>4}"
        )
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from coachcam.config import load_config
    from coachcam.metrics import write_report

    cfg = load_config(args.config).tracker
    media: Path = args.media
    if not (media / "podium_speaker_720p30.mp4").exists():
        raise ConfigError(f"--media {media}: the shared media are not there (see SOURCES.md)")
    try:
        heights = [int(h) for h in args.heights.split(",") if h.strip()]
    except ValueError:
        raise ConfigError(f"--heights {args.heights!r}: want comma-separated integers") from None
    if args.frames < 4:
        raise ConfigError(f"--frames {args.frames}: want at least 4")
    res: dict[str, Any] = {"config": cfg.model_dump(mode="json")}
    res["media"] = media_rows(cfg, media, max(1, args.media_step))
    cuts = person_cutouts(cfg, media)
    res["cutouts"] = [asdict_shape(n, c) for n, c in cuts]
    res["heights"] = height_rows(cfg, cuts, heights, args.frames)
    res["crowd"] = crowd_rows(cfg, cuts, min(args.frames, 12))  # 12: two cycles of 3x2 tiles
    print(format_tables(res))
    if args.json:
        write_report(res, args.json)
    return 0


def asdict_shape(name: str, img: np.ndarray) -> dict[str, Any]:
    return {"name": name, "height": int(img.shape[0]), "width": int(img.shape[1])}
