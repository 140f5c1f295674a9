"""People → tracks → the teacher → where the camera should aim.

The tracker works in room bearings (see coachcam/geometry.py): each pose is converted to the
bearing of its torso centre using the camera's pointing *at the frame's capture time*, so a
person standing still keeps the same bearing while the camera moves. Tracks are kept by
bearing, apparent size, posture and clothing colour; the teacher is one track, chosen once
(standing, at the front of the room, or wearing the badge) and kept through crossings and
occlusion. When the teacher is lost the aim goes coast → hold → search → home, each for a
configured time. Every change of who is followed is logged with its reason.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from coachcam.geometry import Intrinsics, angle_between, pixel_to_bearing
from coachcam.values import Aim as Aim  # re-exported: the loop and tests import it from here
from coachcam.values import AimMode as AimMode
from tracker.config import TrackerConfig
from tracker.types import (
    AIM_UP,
    HIPS,
    KNEES,
    SHOULDERS,
    Detections,
    Pose,
    appearance_distance,
)

log = logging.getLogger(__name__)

SEEN_RECENTLY_S = 0.3  # within this, the teacher counts as seen (about 2 detections at 8 Hz)
POSTURE_CERTAIN = 5  # posture votes before a track's posture gates association
STOP_MIN_DEG_S = 1.0  # below this bearing speed there is no stop to detect
STOP_RATIO = 0.3  # newest step slower than this fraction of the velocity: a stop
FIRST_LOCK_WAIT_S = 0.5  # the first lock waits this long after a candidate appears
TORSO_M = 0.5  # shoulder-to-hip length of an adult (m)
STANDING_SHOULDERS_M = 1.2  # standing adults' shoulders are ~1.4 m up, seated people's ~0.9-1.0
STILL_WINDOW_S = 0.7  # a person is still if their bearing stayed within
STILL_SPAN_DEG = 1.5  # this span over that window (raw bearings carry ~0.3 deg of noise)


@dataclass(frozen=True, slots=True)
class Observation:
    """A pose converted to what the tracker reasons with."""

    pose: Pose
    pan: float
    tilt: float
    size_deg: float  # angular length of the torso: a distance cue
    standing: bool | None  # None when the legs are not seen
    t: float


def torso_target_px(pose: Pose, min_vis: float) -> tuple[float, float, float] | None:
    """Pixel (u, v) of the aim point and the torso length in px, from whatever is visible.

    The aim point is the torso centre raised by ``AIM_UP`` torso lengths (the upper chest): the
    middle of the head and torso, so framing it keeps the head in the picture.
    """
    kp = pose.keypoints
    vis = kp[:, 2] >= min_vis
    sh = [i for i in SHOULDERS if vis[i]]
    hp = [i for i in HIPS if vis[i]]
    if not sh:
        return None
    s = kp[sh, :2].mean(axis=0)
    if hp:
        h = kp[hp, :2].mean(axis=0)
        length = float(np.hypot(*(h - s)))
        c = (s + h) / 2.0
    elif len(sh) == 2:
        width = float(np.hypot(*(kp[SHOULDERS[0], :2] - kp[SHOULDERS[1], :2])))
        length = 1.1 * width  # torso length is about 1.1 shoulder widths
        c = s + np.array([0.0, length / 2.0])
    else:
        return None
    return float(c[0]), float(c[1] - AIM_UP * length), length


def is_standing(pose: Pose, min_vis: float) -> bool | None:
    """Standing if the thighs hang down; seated if they point at the camera. None if unseen.

    Seen from a camera above the people, a seated person's thigh (horizontal, towards the camera)
    projects to well under half the torso length; a standing person's to about its full length.
    """
    kp = pose.keypoints
    vis = kp[:, 2] >= min_vis
    idx = [(h, k) for h, k in zip(HIPS, KNEES, strict=True) if vis[h] and vis[k]]
    if not idx or not all(vis[i] for i in SHOULDERS):
        return None
    hips = kp[[h for h, _ in idx], :2].mean(axis=0)
    knees = kp[[k for _, k in idx], :2].mean(axis=0)
    shoulders = kp[list(SHOULDERS), :2].mean(axis=0)
    torso = float(np.hypot(*(hips - shoulders)))
    if torso <= 1.0:
        return None
    return bool((knees[1] - hips[1]) > 0.55 * torso)


class BearingFilter:
    """Alpha-beta filter on a (pan, tilt) bearing with irregular time steps.

    Written here rather than taken from a library: a few lines that take the capture
    timestamps (not a fixed rate) and believe a person's abrupt stop at once (``update``).
    """

    def __init__(self, pan: float, tilt: float, t: float, alpha: float, beta: float) -> None:
        self.x = np.array([pan, tilt], dtype=float)
        self.v = np.zeros(2)
        self.z: np.ndarray | None = None  # the previous measurement
        self.t = t
        self.alpha, self.beta = alpha, beta

    def update(self, pan: float, tilt: float, t: float, detect_stop: bool = True) -> None:
        dt = t - self.t
        if dt <= 1e-6:
            self.x = (1 - self.alpha) * self.x + self.alpha * np.array([pan, tilt])
            return
        z = np.array([pan, tilt])
        raw_v = (z - self.z) / dt if self.z is not None else self.v
        pred = self.x + self.v * dt
        r = z - pred
        self.x = pred + self.alpha * r
        self.v = self.v + (self.beta / dt) * r
        # People stop abruptly; an alpha-beta filter takes several updates to believe it, and
        # meanwhile the prediction overshoots. When the newest step shows (almost) no motion
        # against a clear velocity, take the stop at once.
        stopped = (
            detect_stop
            & (np.abs(self.v) > STOP_MIN_DEG_S)
            & ((raw_v * self.v < 0) | (np.abs(raw_v) < STOP_RATIO * np.abs(self.v)))
        )
        self.v = np.where(stopped, 0.0, self.v)
        self.z = z
        self.t = t

    def predict(self, t: float) -> tuple[float, float]:
        p = self.x + self.v * (t - self.t)
        return float(p[0]), float(p[1])


@dataclass
class Track:
    id: int
    filt: BearingFilter
    t_first: float
    t_last: float  # capture time of the last matched observation
    t_updated: float  # clock time at which that observation arrived
    size_deg: float
    hits: int = 1
    standing_votes: int = 0
    seated_votes: int = 0
    appearance: np.ndarray | None = None
    last: Observation | None = None
    truth_id: int | None = None  # from the simulated oracle, for reports only
    torso_offsets: np.ndarray | None = None  # torso keypoints' offsets from its centre (px)
    recent: deque[tuple[float, float, float]] = field(default_factory=deque)  # (t, pan, tilt)

    def remember(self, t: float, pan: float, tilt: float) -> None:
        self.recent.append((t, pan, tilt))
        while self.recent and self.recent[0][0] < t - STILL_WINDOW_S:
            self.recent.popleft()

    def still(self) -> bool:
        """Standing still: over the last ``STILL_WINDOW_S`` the bearing stayed within
        ``STILL_SPAN_DEG``. Sturdier than the filter's velocity, which noise pushes about."""
        r = self.recent
        if len(r) < 3 or r[-1][0] - r[0][0] < 0.6 * STILL_WINDOW_S:
            return False
        pans = [p for _, p, _ in r]
        tilts = [t for _, _, t in r]
        return max(pans) - min(pans) < STILL_SPAN_DEG and max(tilts) - min(tilts) < STILL_SPAN_DEG

    @property
    def standing(self) -> bool:
        return self.standing_votes > self.seated_votes

    @property
    def posture_known(self) -> bool:
        return self.standing_votes + self.seated_votes >= POSTURE_CERTAIN

    @property
    def posture_settled(self) -> bool:
        """Consistently one posture: only then does posture gate association (a person whose
        posture the model reads both ways, e.g. leaning on a rail, keeps their track)."""
        return abs(self.standing_votes - self.seated_votes) >= POSTURE_CERTAIN

    def vote(self, standing: bool | None) -> None:
        # Votes decay so a person who stands up is re-classified within a second or so.
        if standing is True:
            self.standing_votes = min(self.standing_votes + 1, 15)
            self.seated_votes = max(self.seated_votes - 1, 0)
        elif standing is False:
            self.seated_votes = min(self.seated_votes + 1, 15)
            self.standing_votes = max(self.standing_votes - 1, 0)


@dataclass(frozen=True, slots=True)
class IdentitySwitch:
    t: float
    old: int | None
    new: int | None
    reason: str


@dataclass
class Tracker:
    cfg: TrackerConfig
    intr: Intrinsics
    home: tuple[float, float] = (0.0, 0.0)
    camera_height_m: float | None = None  # mount height; enables posture from shoulder height
    tracks: dict[int, Track] = field(default_factory=dict)
    teacher_id: int | None = None
    teacher_look: np.ndarray | None = None
    lost_since: float | None = None
    ever_locked: bool = False
    switches: list[IdentitySwitch] = field(default_factory=list)
    _next_id: int = 1
    _last_bearing: tuple[float, float] = (0.0, 0.0)
    _t_start: float | None = None
    _candidates_since: float | None = None

    # -- observations ---------------------------------------------------------------------
    def observe(self, pose: Pose, t: float, cam_pan: float, cam_tilt: float) -> Observation | None:
        c = torso_target_px(pose, self.cfg.min_visibility)
        if c is None:
            return None
        u, v, length = c
        pan, tilt = pixel_to_bearing(u, v, cam_pan, cam_tilt, self.intr)
        size = max(math.degrees(math.atan2(length, self.intr.fx)), 1e-3)
        standing = is_standing(pose, self.cfg.min_visibility)
        if standing is None and self.camera_height_m is not None:
            standing = self._standing_by_height(pose, size, cam_pan, cam_tilt)
        return Observation(pose, pan, tilt, size, standing, t)

    def _standing_by_height(
        self, pose: Pose, size_deg: float, cam_pan: float, cam_tilt: float
    ) -> bool | None:
        """Posture from how high the shoulders are above the floor, when the legs are not seen
        (people close to the camera, or behind desks): the distance comes from the torso's
        apparent length (an adult's is ~0.5 m), the height from the shoulders' elevation."""
        kp = pose.keypoints
        if not (kp[list(SHOULDERS), 2] >= self.cfg.min_visibility).all():
            return None
        u, v = kp[list(SHOULDERS), :2].mean(axis=0)
        _, elev = pixel_to_bearing(float(u), float(v), cam_pan, cam_tilt, self.intr)
        distance = TORSO_M / math.tan(math.radians(size_deg))
        assert self.camera_height_m is not None
        shoulders_m = self.camera_height_m + distance * math.tan(math.radians(elev))
        return shoulders_m > STANDING_SHOULDERS_M

    # -- update -----------------------------------------------------------------------------
    def update(self, dets: Detections, cam_pan: float, cam_tilt: float, now: float) -> None:
        """Fold one frame's detections in. ``cam_pan/tilt``: pointing at ``dets.t_capture``."""
        t = dets.t_capture
        obs = [o for p in dets.poses if (o := self.observe(p, t, cam_pan, cam_tilt)) is not None]
        pairs = self._associate(obs, t)
        matched_obs = set()
        for tid, j in pairs:
            self._apply(self.tracks[tid], obs[j], now, (cam_pan, cam_tilt))
            matched_obs.add(j)
        for j, o in enumerate(obs):
            if j not in matched_obs:
                self._new_track(o, now)
        for tid in [
            tid for tid, tr in self.tracks.items() if now - tr.t_updated > self.cfg.drop_after_s
        ]:
            if tid == self.teacher_id:
                self._set_teacher(None, now, f"teacher unseen for {self.cfg.drop_after_s:.1f} s")
            del self.tracks[tid]
        self._choose_teacher(now)

    def _cost(self, tr: Track, o: Observation, t: float) -> float | None:
        pp, pt = tr.filt.predict(t)
        dang = angle_between(pp, pt, o.pan, o.tilt)
        look = appearance_distance(tr.appearance, o.pose.appearance)
        if look is not None and look > self.cfg.appearance_gate:
            return None  # clearly someone else, however close
        unseen = max(0.0, t - tr.t_last)
        grow = self._grow(tr, t)
        coasting = unseen > SEEN_RECENTLY_S and tr.appearance is not None
        if coasting and (look is None or look >= self.cfg.appearance_accept):
            # A track coasting on its prediction is only picked up again far from where it was
            # by someone who looks like it: a false detection must not drag it away.
            grow = 0.0
        if dang > self.cfg.max_match_deg + grow:
            return None
        if tr.posture_settled and o.standing is not None and o.standing != tr.standing:
            return None  # a standing track never jumps onto a seated person, nor back
        size = abs(math.log(o.size_deg / tr.size_deg)) / math.log(1.5)
        app = 0.0 if look is None else 3.0 * look * self.cfg.appearance_weight
        return dang / self.cfg.max_match_deg + size + app

    @staticmethod
    def _grow(tr: Track, t: float) -> float:
        """How far (deg) a track's match gate widens while it is unseen and moving."""
        return min(20.0, float(np.hypot(*tr.filt.v)) * max(0.0, t - tr.t_last))

    def _associate(self, obs: list[Observation], t: float) -> list[tuple[int, int]]:
        # Greedy by cost: a handful of people per frame, so no need for the Hungarian method.
        # The bearing gate is applied to all pairs at once first (numpy), so a crowded room
        # costs one array operation per track, not a full cost per pair (1,000 people: 98 %
        # of the time went to pairs the gate rejects); _cost still decides every pair it sees.
        cands = []
        if not obs:
            return []
        o_pan = np.radians([o.pan for o in obs])
        o_tilt = np.radians([o.tilt for o in obs])
        for tid, tr in self.tracks.items():
            pp, pt = (math.radians(a) for a in tr.filt.predict(t))
            cos_d = np.sin(pt) * np.sin(o_tilt) + np.cos(pt) * np.cos(o_tilt) * np.cos(pp - o_pan)
            dang = np.degrees(np.arccos(np.clip(cos_d, -1.0, 1.0)))
            near = np.flatnonzero(dang <= self.cfg.max_match_deg + self._grow(tr, t) + 1e-6)
            for j in near.tolist():
                c = self._cost(tr, obs[j], t)
                if c is not None:
                    cands.append((c, tid, j))
        cands.sort()
        used_t, used_o, pairs = set(), set(), []
        for _c, tid, j in cands:
            if tid in used_t or j in used_o:
                continue
            used_t.add(tid)
            used_o.add(j)
            pairs.append((tid, j))
        return pairs

    def _apply(self, tr: Track, o: Observation, now: float, cam: tuple[float, float]) -> None:
        # A person disappearing behind something shifts their visible torso backwards: that is
        # not a stop, so a stop is only believed when the whole torso is seen now and before.
        torso = list(SHOULDERS + HIPS)
        vis = o.pose.visible(self.cfg.min_visibility)[torso]
        kp = o.pose.keypoints[torso, :2]
        whole = bool(vis.all())
        if whole:
            tr.torso_offsets = kp.mean(axis=0) - kp
        elif vis.any() and tr.torso_offsets is not None:
            # Part of the torso is hidden: estimate its centre from the visible keypoints and
            # where they sat relative to the centre when it was last wholly seen.
            u, v = (kp[vis] + tr.torso_offsets[vis]).mean(axis=0)
            v -= AIM_UP * float(
                np.hypot(*(tr.torso_offsets[:2].mean(0) - tr.torso_offsets[2:].mean(0)))
            )
            pan, tilt = pixel_to_bearing(float(u), float(v), cam[0], cam[1], self.intr)
            o = Observation(o.pose, pan, tilt, o.size_deg, o.standing, o.t)
        was_whole = tr.last is not None and bool(
            tr.last.pose.visible(self.cfg.min_visibility)[torso].all()
        )
        tr.filt.update(o.pan, o.tilt, o.t, detect_stop=whole and was_whole)
        tr.remember(o.t, o.pan, o.tilt)
        tr.t_last, tr.t_updated = o.t, now
        tr.size_deg = 0.8 * tr.size_deg + 0.2 * o.size_deg
        tr.hits += 1
        tr.vote(o.standing)
        look = o.pose.appearance
        if look is not None:
            tr.appearance = (
                look.copy() if tr.appearance is None else 0.9 * tr.appearance + 0.1 * look
            )
        tr.last = o
        tr.truth_id = o.pose.truth_id

    def _new_track(self, o: Observation, now: float) -> None:
        tr = Track(
            id=self._next_id,
            filt=BearingFilter(o.pan, o.tilt, o.t, self.cfg.filter_alpha, self.cfg.filter_beta),
            t_first=o.t,
            t_last=o.t,
            t_updated=now,
            size_deg=o.size_deg,
            appearance=None if o.pose.appearance is None else o.pose.appearance.copy(),
            last=o,
            truth_id=o.pose.truth_id,
        )
        tr.vote(o.standing)
        self.tracks[tr.id] = tr
        self._next_id += 1

    # -- the teacher ------------------------------------------------------------------------
    def _candidates(self) -> list[Track]:
        return [
            tr
            for tr in self.tracks.values()
            if tr.hits >= self.cfg.confirm_hits and tr.posture_known and tr.standing
        ]

    def _choose_teacher(self, now: float) -> None:
        badge = self.cfg.badge_id
        if badge >= 0:
            for tr in self.tracks.values():
                if (
                    tr.last is not None
                    and tr.last.pose.marker_id == badge
                    and tr.id != self.teacher_id
                ):
                    self._set_teacher(tr.id, now, f"wears badge {badge}")
                    return
        if self.teacher_id is not None:
            return
        if self.teacher_look is not None and not self._search_exhausted(now):
            # Re-identification: a clothing-colour match need not wait for a settled posture,
            # but must not look seated.
            scored = []
            for tr in self.tracks.values():
                if tr.hits < 2 or tr.seated_votes > 0 or tr.standing_votes < 2:
                    continue
                d = appearance_distance(self.teacher_look, tr.appearance)
                if d is not None and d < self.cfg.appearance_accept:
                    scored.append((d, tr.id))
            if scored:
                d, tid = min(scored)
                self._set_teacher(tid, now, f"re-identified by clothing colour (distance {d:.2f})")
            return
        cands = self._candidates()
        if not cands:
            self._candidates_since = None
            return
        # Let everyone in view be confirmed before choosing: a moment's wait, not a race won by
        # whoever the detector happened to see first.
        if self._candidates_since is None:
            self._candidates_since = now
        if now - self._candidates_since < FIRST_LOCK_WAIT_S:
            return
        # First lock (or after a full search): the standing person furthest to the front of the
        # room (smallest torso), then nearest the middle of the picture.
        best = min(
            cands, key=lambda tr: (round(tr.size_deg, 1), abs(tr.filt.x[0] - self._last_bearing[0]))
        )
        reason = "standing person at the front of the room"
        if self.ever_locked:
            reason += " (after a full search for the teacher)"
        self._set_teacher(best.id, now, reason)

    def _search_exhausted(self, now: float) -> bool:
        if self.lost_since is None:
            return False
        c = self.cfg
        return now - self.lost_since > c.coast_s + c.hold_s + c.search_s

    def _set_teacher(self, tid: int | None, now: float, reason: str) -> None:
        old = self.teacher_id
        if tid == old:
            return
        self.teacher_id = tid
        self.switches.append(IdentitySwitch(now, old, tid, reason))
        log.info("identity: following %s (was %s): %s", tid, old, reason)
        if tid is not None:
            tr = self.tracks[tid]
            self.ever_locked = True
            self.lost_since = None
            if tr.appearance is not None and (
                self.teacher_look is None or "badge" in reason or "retarget" in reason
            ):
                self.teacher_look = tr.appearance.copy()
        elif old is not None and old in self.tracks and self.lost_since is None:
            self.lost_since = self.tracks[old].t_updated

    def retarget(self, track_id: int, now: float) -> None:
        """The coach or technician picks who to follow (a track id)."""
        if track_id not in self.tracks:
            raise KeyError(f"no track {track_id}; tracks now: {sorted(self.tracks)}")
        self.teacher_look = None
        self._set_teacher(track_id, now, "retarget by operator")

    def retarget_centre(self, cam_pan: float, cam_tilt: float, now: float) -> int | None:
        """Follow the person nearest the centre of the picture now."""
        if not self.tracks:
            return None
        tr = min(
            self.tracks.values(),
            key=lambda t: angle_between(t.filt.x[0], t.filt.x[1], cam_pan, cam_tilt),
        )
        self.retarget(tr.id, now)
        return tr.id

    @property
    def teacher(self) -> Track | None:
        return None if self.teacher_id is None else self.tracks.get(self.teacher_id)

    # -- aim --------------------------------------------------------------------------------
    def aim(self, now: float) -> Aim:
        c = self.cfg
        tr = self.teacher
        if tr is not None:
            lost_for = now - tr.t_updated
            pan, tilt = tr.filt.predict(tr.t_last)
            self._last_bearing = (pan, tilt)
            if lost_for <= SEEN_RECENTLY_S or lost_for <= c.coast_s:
                mode: AimMode = "follow" if lost_for <= SEEN_RECENTLY_S else "coast"
                v = tr.filt.v
                px = None
                if tr.last is not None:
                    c0 = torso_target_px(tr.last.pose, c.min_visibility)
                    px = None if c0 is None else (c0[0], c0[1])
                return Aim(
                    mode, pan, tilt, float(v[0]), float(v[1]), tr.t_last, tr.id, px,
                    still=tr.still(),
                )  # fmt: skip
            lost_since = tr.t_updated
        elif self.lost_since is not None:
            lost_since = self.lost_since
        else:
            # Nobody locked yet: wait a moment at home, then sweep the room to find the teacher.
            if self._t_start is None:
                self._t_start = now
            waited = now - self._t_start - c.hold_s
            if waited <= 0:
                return Aim("idle", *self.home, t_ref=now)
            return Aim("idle", self.home[0] + self._sweep(waited, 35.0), self.home[1], t_ref=now)
        lost_for = now - lost_since
        lp, lt = self._last_bearing
        if lost_for <= c.coast_s + c.hold_s:
            return Aim("hold", lp, lt, t_ref=now)
        if lost_for <= c.coast_s + c.hold_s + c.search_s:
            # Sweep +-20 deg around where the teacher was last seen (a triangle wave).
            amp = 20.0
            period = 4.0 * amp / c.search_speed_deg_s
            phase = ((lost_for - c.coast_s - c.hold_s) / period) % 1.0
            off = amp * (
                4 * phase if phase < 0.25 else 2 - 4 * phase if phase < 0.75 else 4 * phase - 4
            )
            return Aim("search", lp + off, lt, t_ref=now)
        return Aim("home", *self.home, t_ref=now)

    def _sweep(self, t: float, amp: float) -> float:
        """A triangle wave of amplitude ``amp`` at the search speed, starting at 0."""
        period = 4.0 * amp / self.cfg.search_speed_deg_s
        phase = (t / period) % 1.0
        return amp * (
            4 * phase if phase < 0.25 else 2 - 4 * phase if phase < 0.75 else 4 * phase - 4
        )
