"""Congestion decisions for one published video track and its subscribers.

Pure logic, fed with the subscribers' REMB estimates and reception reports
(``rooms.media.receiver_feedback``) and with the clock; it decides
(``rooms.media.congestion_control`` carries the decisions out):

- what the publisher is asked for: the lowest estimate of the subscribers
  that get video, bounded by the floor (``ROOM_MIN_VIDEO_KBPS``) below and
  the cap (``ROOM_MAX_VIDEO_KBPS``) above, so one poor subscriber cannot
  drag the room under the floor;
- which subscriber's video to pause: one whose estimate stays low for
  ``pause_after_s``: under what the stream needs (the floor, or the
  publisher's own rate when that is lower) while its receiver reports
  lose packets, or far under it (``low_ratio``) in any case;
- when to probe a paused subscriber (forward its video again for
  ``probe_s``, no event) and whether the probe found the link recovered
  (resume) or not (pause again, and probe less often).

A receiver's estimator (Google congestion control over REMB, in aiortc and
Chromium alike) falls to 85 % of what arrived when it sees queues grow, and
then climbs back slowly (after a back-off by a few kbit/s a second, as
measured here), never above 1.5 times what arrives. So: the pause
threshold sits at ``low_ratio`` (80 %) of the need, under a healthy link's
back-off; only estimates that do not rise count as low; a probe is judged
by whether the estimator backed off or the subscriber reports lost
packets, not by the figure it has climbed to; and a resumed subscriber
counts as carrying what its probe carried (the publisher's rate then)
until its estimate climbs past that or backs off again.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CongestionPolicy:
    # The floor and the cap of what a publisher is asked for (bit/s; max 0: no cap).
    min_bps: int
    max_bps: int = 0
    # An estimate under this share of the need is low; one under the need is
    # low when the last reception report lost at least ``lossy`` of the packets.
    low_ratio: float = 0.8
    lossy: float = 0.05
    # Low this long (no estimate at or over the threshold meanwhile): paused.
    pause_after_s: float = 1.0
    # The first probe this long after a pause; each failed one waits
    # ``probe_backoff`` times longer, up to ``probe_max_interval_s``.
    probe_interval_s: float = 2.0
    probe_backoff: float = 1.5
    probe_max_interval_s: float = 3.0
    # How long a probe forwards video before it is judged a success; one
    # that sees a back-off or loss fails at once.
    probe_s: float = 1.5
    # A probe with more loss than this failed.
    probe_max_loss: float = 0.05
    # Estimates older than this are no longer counted for the publisher.
    stale_after_s: float = 4.0


class LegState(enum.Enum):
    FORWARDING = "forwarding"
    PAUSED = "paused"
    PROBING = "probing"


class Action(enum.Enum):
    """What to do with a subscriber's video."""

    PAUSE = "pause"  # stop forwarding, tell the subscriber (stream.paused)
    PROBE = "probe"  # forward again, tell nobody yet
    PROBE_FAILED = "probe_failed"  # stop forwarding again, tell nobody
    RESUME = "resume"  # forwarding stays on, tell the subscriber (stream.resumed)


@dataclass
class _Leg:
    state: LegState = LegState.FORWARDING
    estimate_bps: int | None = None
    estimate_at: float = 0.0
    # What a successful probe carried (bit/s), until the estimate passes it or backs off.
    proven_bps: int | None = None
    # When the estimate first fell low without rising since.
    low_since: float | None = None
    # The fraction lost in the last reception report.
    loss: float = 0.0
    next_probe_at: float = 0.0
    probe_interval_s: float = 0.0
    probe_started: float = 0.0
    # What the current probe saw: estimates, a back-off, the worst loss.
    probe_estimates: int = 0
    probe_backed_off: bool = False
    probe_loss: float = 0.0


@dataclass
class TrackCongestion:
    """One published video track's subscribers (legs), by any hashable key."""

    policy: CongestionPolicy
    # The publisher's own video rate as last measured (bit/s); None: unknown.
    source_bps: int | None = None
    _legs: dict[Hashable, _Leg] = field(default_factory=dict)

    def need_bps(self) -> int:
        """What a subscriber must carry: the floor, or the publisher's rate when lower."""
        if self.source_bps is None or self.source_bps <= 0:
            return self.policy.min_bps
        return min(self.policy.min_bps, self.source_bps)

    def threshold_bps(self) -> int:
        return int(self.need_bps() * self.policy.low_ratio)

    def leg_add(self, leg: Hashable) -> None:
        self._legs.setdefault(leg, _Leg())

    def leg_remove(self, leg: Hashable) -> None:
        self._legs.pop(leg, None)

    def state(self, leg: Hashable) -> LegState | None:
        entry = self._legs.get(leg)
        return None if entry is None else entry.state

    def estimate(self, leg: Hashable, bps: int, now: float) -> None:
        """A REMB from ``leg``'s subscriber."""
        entry = self._legs.get(leg)
        if entry is None:
            return
        previous = entry.estimate_bps
        entry.estimate_bps, entry.estimate_at = bps, now
        rising = previous is not None and bps > previous
        falling = previous is not None and bps < previous
        if entry.state is LegState.PROBING:
            entry.probe_estimates += 1
            entry.probe_backed_off |= falling
            return
        if entry.proven_bps is not None and (falling or bps >= entry.proven_bps):
            entry.proven_bps = None
        if not self._low(entry):
            entry.low_since = None
        elif not rising and entry.low_since is None:
            entry.low_since = now

    def loss(self, leg: Hashable, fraction: float, now: float) -> None:
        """A reception report from ``leg``'s subscriber."""
        entry = self._legs.get(leg)
        if entry is None:
            return
        entry.loss = fraction
        if entry.state is LegState.PROBING:
            entry.probe_loss = max(entry.probe_loss, fraction)
        elif entry.state is LegState.FORWARDING and entry.low_since is None and self._low(entry):
            entry.low_since = now

    def _low(self, entry: _Leg) -> bool:
        bps = entry.estimate_bps
        if bps is None or entry.proven_bps is not None:
            return False
        return bps < self.threshold_bps() or (bps < self.need_bps() and entry.loss >= self.policy.lossy)

    def tick(self, now: float) -> list[tuple[Hashable, Action]]:
        """The decisions due at ``now`` (call a few times a second)."""
        actions: list[tuple[Hashable, Action]] = []
        policy = self.policy
        for key, leg in self._legs.items():
            if leg.state is LegState.FORWARDING:
                if leg.low_since is not None and now - leg.low_since >= policy.pause_after_s:
                    leg.state = LegState.PAUSED
                    leg.low_since = None
                    leg.probe_interval_s = policy.probe_interval_s
                    leg.next_probe_at = now + leg.probe_interval_s
                    actions.append((key, Action.PAUSE))
            elif leg.state is LegState.PAUSED:
                if now >= leg.next_probe_at:
                    leg.state = LegState.PROBING
                    leg.probe_started = now
                    leg.probe_estimates, leg.probe_backed_off, leg.probe_loss = 0, False, 0.0
                    actions.append((key, Action.PROBE))
            else:
                failed = leg.probe_backed_off or leg.probe_loss > policy.probe_max_loss
                if not failed and now - leg.probe_started < policy.probe_s:
                    continue
                if not failed and leg.probe_estimates > 0:
                    leg.state = LegState.FORWARDING
                    leg.low_since = None
                    leg.proven_bps = self.source_bps or policy.min_bps
                    actions.append((key, Action.RESUME))
                else:
                    leg.state = LegState.PAUSED
                    leg.probe_interval_s = min(leg.probe_interval_s * policy.probe_backoff,
                                               policy.probe_max_interval_s)
                    leg.next_probe_at = now + leg.probe_interval_s
                    actions.append((key, Action.PROBE_FAILED))
        return actions

    def target_bps(self, now: float) -> int | None:
        """What the publisher is asked for; None when no subscriber gave a current estimate.

        Only subscribers that get video count: a paused or probing one would
        drag everyone down to what it cannot carry anyway.
        """
        estimates = [
            max(leg.estimate_bps, leg.proven_bps or 0) for leg in self._legs.values()
            if leg.state is LegState.FORWARDING and leg.estimate_bps is not None
            and now - leg.estimate_at <= self.policy.stale_after_s
        ]
        if not estimates:
            return None
        target = max(min(estimates), self.policy.min_bps)
        if self.policy.max_bps > 0:
            target = min(target, self.policy.max_bps)
        return target
