"""The congestion decisions (rooms.media.congestion), on a clock the test drives."""

from __future__ import annotations

from rooms.media.congestion import Action, CongestionPolicy, LegState, TrackCongestion

FLOOR = 300_000
CAP = 2_500_000


def track(**policy: float) -> TrackCongestion:
    congestion = TrackCongestion(CongestionPolicy(min_bps=FLOOR, max_bps=CAP, **policy))  # type: ignore[arg-type]
    congestion.source_bps = 800_000
    for leg in ("good", "poor"):
        congestion.leg_add(leg)
    return congestion


def feed(congestion: TrackCongestion, leg: str, figures: list[int], start: float, step: float = 0.25) -> float:
    """``figures`` as REMBs from ``leg`` every ``step`` seconds from ``start``; the time after the last."""
    now = start
    for figure in figures:
        congestion.estimate(leg, figure, now)
        now += step
    return now


def run(congestion: TrackCongestion, start: float, end: float, step: float = 0.25) -> list[tuple[float, str, Action]]:
    """Tick from ``start`` to ``end``: every decision with its time."""
    decisions = []
    now = start
    while now <= end + 1e-9:
        decisions += [(now, str(leg), action) for leg, action in congestion.tick(now)]
        now += step
    return decisions


def paused_at_one_second(congestion: TrackCongestion) -> None:
    congestion.estimate("good", 900_000, 0.0)
    congestion.estimate("poor", 200_000, 0.0)
    congestion.estimate("poor", 190_000, 0.5)
    assert run(congestion, 0.0, 1.0) == [(1.0, "poor", Action.PAUSE)]


def test_the_publisher_is_asked_for_the_lowest_estimate_within_floor_and_cap() -> None:
    congestion = track()
    assert congestion.target_bps(0.0) is None  # nobody said anything yet
    congestion.estimate("good", 900_000, 0.0)
    assert congestion.target_bps(0.0) == 900_000
    congestion.estimate("poor", 600_000, 0.0)
    assert congestion.target_bps(0.0) == 600_000
    # One poor subscriber does not drag the room under the floor ...
    congestion.estimate("poor", 120_000, 0.1)
    assert congestion.target_bps(0.1) == FLOOR
    # ... and nobody lifts it over the cap.
    congestion.estimate("poor", 30_000_000, 0.2)
    congestion.estimate("good", 9_000_000, 0.2)
    assert congestion.target_bps(0.2) == CAP
    # An estimate not heard of for a while no longer counts; a leg that left neither.
    congestion.estimate("good", 700_000, 3.0)
    assert congestion.target_bps(4.5) == 700_000
    congestion.leg_remove("good")
    assert congestion.target_bps(4.5) is None


def test_a_subscriber_low_for_a_second_is_paused_and_no_longer_counts() -> None:
    congestion = track()
    paused_at_one_second(congestion)
    assert congestion.state("poor") is LegState.PAUSED
    assert congestion.state("good") is LegState.FORWARDING
    assert congestion.target_bps(1.0) == 900_000


def test_an_estimate_over_the_threshold_stops_the_clock_and_rising_ones_under_it_do_not() -> None:
    congestion = track()
    # 80 % of the floor is the threshold: 250 kbit/s is under it, 260 over.
    assert congestion.threshold_bps() == 240_000
    feed(congestion, "poor", [200_000, 200_000, 260_000, 200_000], 0.0, step=0.5)
    # Low at 0.0, over at 1.0, low again at 1.5: paused a second after that.
    assert run(congestion, 0.0, 3.0) == [(2.5, "poor", Action.PAUSE)]

    climbing = track()
    feed(climbing, "poor", [150_000, 160_000, 170_000, 180_000, 190_000, 200_000], 0.0, step=0.5)
    assert climbing.state("poor") is LegState.FORWARDING
    # Climbing, but still under the threshold: the first set the clock going.
    assert run(climbing, 0.0, 1.0) == [(1.0, "poor", Action.PAUSE)]


def test_a_publisher_sending_less_than_the_floor_needs_only_what_it_sends() -> None:
    congestion = track()
    congestion.source_bps = 150_000
    assert congestion.need_bps() == 150_000
    # A healthy link's estimate (about what arrives) is no reason to pause.
    feed(congestion, "poor", [140_000, 140_000, 140_000, 140_000, 140_000], 0.0, step=0.5)
    assert run(congestion, 0.0, 3.0) == []


def test_probes_back_off_on_a_link_that_stays_poor() -> None:
    congestion = track()
    paused_at_one_second(congestion)
    decisions = run(congestion, 1.25, 3.0)
    assert decisions == [(3.0, "poor", Action.PROBE)]
    # The estimator backs off when the video comes again: the probe failed, at once.
    feed(congestion, "poor", [250_000, 180_000], 3.25)
    assert run(congestion, 3.25, 3.25) == [(3.25, "poor", Action.PROBE_FAILED)]
    decisions = run(congestion, 3.5, 20.0)
    assert [action for _, _, action in decisions][:4] == [
        Action.PROBE, Action.PROBE_FAILED, Action.PROBE, Action.PROBE_FAILED,
    ]
    # A probe that hears nothing fails after probe_s; the first wait was
    # 2 s, the later ones 3 s (at most).
    failed = [3.25] + [at for at, _, action in decisions if action is Action.PROBE_FAILED]
    probes = [at for at, _, action in decisions if action is Action.PROBE]
    assert [round(probe - fail, 2) for fail, probe in zip(failed, probes, strict=False)] == [3.0, 3.0, 3.0, 3.0]
    assert [round(fail - probe, 2) for probe, fail in zip(probes, failed[1:], strict=False)] == [1.5, 1.5, 1.5]
    assert all(action is not Action.RESUME for _, _, action in decisions)


def test_a_probe_with_lost_packets_fails() -> None:
    congestion = track()
    paused_at_one_second(congestion)
    assert run(congestion, 1.25, 3.0) == [(3.0, "poor", Action.PROBE)]
    feed(congestion, "poor", [200_000, 201_000, 202_000], 3.25)
    assert run(congestion, 3.25, 3.75) == []
    congestion.loss("poor", 0.2, 3.9)
    assert run(congestion, 4.0, 4.5) == [(4.0, "poor", Action.PROBE_FAILED)]


def test_a_probe_on_a_recovered_link_resumes_and_counts_what_it_carried() -> None:
    congestion = track()
    paused_at_one_second(congestion)
    assert run(congestion, 1.25, 3.0) == [(3.0, "poor", Action.PROBE)]
    # The estimate climbs slowly from where it fell; no loss.
    feed(congestion, "poor", [190_000, 191_000, 192_000, 193_000], 3.25)
    congestion.loss("poor", 0.0, 4.0)
    assert run(congestion, 3.25, 4.5) == [(4.5, "poor", Action.RESUME)]
    assert congestion.state("poor") is LegState.FORWARDING
    # It carried the publisher's 800 kbit/s: it asks for no less while its estimate climbs ...
    congestion.estimate("good", 900_000, 4.5)
    feed(congestion, "poor", [194_000, 195_000, 195_000, 196_000], 4.75)
    assert congestion.target_bps(5.5) == 800_000
    assert run(congestion, 4.75, 8.0) == []
    # ... until it backs off: then its estimate counts, and low, it is paused again.
    feed(congestion, "poor", [150_000, 150_000], 8.25)
    assert congestion.target_bps(8.5) == FLOOR
    assert run(congestion, 8.25, 9.5) == [(9.25, "poor", Action.PAUSE)]


def test_under_the_need_with_lost_packets_is_low_too() -> None:
    congestion = track()
    # 280 kbit/s: over 80 % of the floor, so no reason to pause while nothing is lost ...
    feed(congestion, "poor", [280_000, 280_000, 280_000], 0.0, step=0.5)
    assert run(congestion, 0.0, 1.5) == []
    # ... but the subscriber loses a fifth of the packets: its link is full.
    congestion.loss("poor", 0.2, 1.6)
    assert run(congestion, 1.75, 3.0) == [(2.75, "poor", Action.PAUSE)]

    # Loss on a link whose estimate carries the need is no reason.
    lossy = track()
    feed(lossy, "poor", [900_000, 900_000], 0.0, step=0.5)
    lossy.loss("poor", 0.3, 1.1)
    feed(lossy, "poor", [900_000, 900_000, 900_000], 1.5, step=0.5)
    assert run(lossy, 0.0, 3.0) == []
