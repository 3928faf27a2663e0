"""The load test's arithmetic: percentiles, frame loss from RTP timestamps, thresholds."""

from __future__ import annotations

import pytest

from loadtest.report import (
    SubscriptionResult,
    distribution,
    failures,
    frames_expected,
    media_summary,
    percentile,
    render_text,
)


def test_percentiles_interpolate_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert percentile(values, 0) == 10
    assert percentile(values, 50) == 30
    assert percentile(values, 100) == 50
    assert percentile(values, 95) == pytest.approx(48.0)
    assert percentile([40.0, 10.0, 30.0, 20.0], 50) == 25  # unsorted input, even count
    assert percentile([7.0], 99) == 7


def test_percentile_refuses_nothing_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_distribution() -> None:
    summary = distribution([float(v) for v in range(1, 101)])
    assert summary == {"count": 100, "min": 1, "p50": 50.5, "p95": 95.0, "p99": 99.0, "max": 100, "mean": 50.5}
    assert distribution([]) is None


def test_frames_expected_counts_the_steps_between_first_and_last() -> None:
    assert frames_expected(0, 0, 6000) == 1
    assert frames_expected(0, 6000 * 99, 6000) == 100
    # 24 fps on a 90 kHz clock: steps of 3750; a truncated pts is off by a tick, rounding absorbs it
    assert frames_expected(3750, 3750 * 48 - 1, 3750) == 48
    with pytest.raises(ValueError):
        frames_expected(10, 5, 3000)


def subscription(**fields: object) -> SubscriptionResult:
    values: dict[str, object] = {"room": "r", "subscriber": "s", "publisher": "p", "stream": "x",
                                 "first_frame_ms": 120.0, "frames": 150, "frames_expected": 150,
                                 "window_frames": 150, "window_s": 10.0, "audio_frames": 500, "audio_expected": 500,
                                 "packets_received": 900, "packets_lost": 0}
    values.update(fields)
    return SubscriptionResult(**values)  # type: ignore[arg-type]


def test_subscription_fps_and_loss() -> None:
    result = subscription(frames=144, frames_expected=150, window_frames=140, window_s=10.0,
                          audio_frames=490, audio_expected=500)
    assert result.fps == 14.0
    assert result.frames_lost == 6
    assert result.video_loss_percent == pytest.approx(4.0)
    assert result.audio_loss_percent == pytest.approx(2.0)
    assert subscription(window_s=0.0).fps == 0.0
    # more frames than the span explains (a duplicate) is no negative loss
    assert subscription(frames=151).frames_lost == 0
    as_dict = result.as_dict()
    assert as_dict["fps"] == 14.0 and as_dict["frames_lost"] == 6 and as_dict["video_loss_percent"] == 4.0


def test_media_summary_adds_up_the_subscriptions() -> None:
    results = [
        subscription(frames=100, frames_expected=100, window_frames=150, first_frame_ms=100.0, packets_lost=0),
        subscription(frames=90, frames_expected=100, window_frames=120, first_frame_ms=300.0, packets_lost=10,
                     packets_received=890),
        subscription(first_frame_ms=None, frames=0, frames_expected=0, window_frames=0),
    ]
    summary = media_summary(results, planned=4)
    assert summary["subscriptions_planned"] == 4
    assert summary["subscriptions_playing"] == 2
    assert summary["first_frame_ms"]["p50"] == 200.0
    assert summary["video_frames"] == 190
    assert summary["video_frames_lost"] == 10
    assert summary["video_loss_percent"] == 5.0
    assert summary["worst_video_loss_percent"] == 10.0
    assert summary["fps"]["min"] == 0.0  # the silent one counts, at zero
    assert summary["rtp_packets_lost"] == 10
    assert summary["rtp_loss_percent"] == pytest.approx(100 * 10 / (900 + 890 + 10), abs=0.001)


def report_of(results: list[SubscriptionResult], *, chat: dict[str, object] | None = None,
              errors: dict[str, object] | None = None, joined: int = 3) -> dict[str, object]:
    return {
        "config": {"url": "ws://h/ws/rooms/", "rooms": 1, "publishers": 1, "subscribers": 2, "chat_rate": 1.0,
                   "video": "320x240@15", "fps": 15, "audio": True, "token_mode": False},
        "window_s": 10.0,
        "participants": {"planned": 3, "joined": joined},
        "connect_ms": distribution([3.0, 4.0]), "join_ms": distribution([5.0, 6.0]),
        "publishing": 1, "publish_ms": distribution([100.0]),
        "media": media_summary(results, planned=2),
        "chat": chat,
        "errors": errors or {"count": 0, "by_code": {}, "samples": []},
        "subscriptions": [r.as_dict() for r in results],
    }


THRESHOLDS = {"max_errors": 0, "max_chat_loss": 0.0, "max_video_loss": 1.0, "min_fps": 12.0}


def test_a_clean_run_passes() -> None:
    chat = {"sent": 10, "accepted": 10, "expected_deliveries": 20, "delivered": 20, "lost": 0, "loss_percent": 0.0,
            "latency_ms": distribution([5.0, 9.0])}
    report = report_of([subscription(), subscription(subscriber="t")], chat=chat)
    assert failures(report, **THRESHOLDS) == []  # type: ignore[arg-type]
    report["failures"] = []
    text = render_text(report)
    assert "fps           min 15, p50 15, mean 15 (published 15)" in text
    assert text.endswith("PASSED")


def test_every_threshold_fails_the_run_with_its_reason() -> None:
    chat = {"sent": 10, "accepted": 10, "expected_deliveries": 20, "delivered": 19, "lost": 1, "loss_percent": 5.0,
            "latency_ms": None}
    errors = {"count": 2, "by_code": {"room_failed:room_full": 2}, "samples": []}
    results = [subscription(window_frames=100), subscription(subscriber="t", frames=140, frames_expected=150)]
    report = report_of(results, chat=chat, errors=errors, joined=2)
    report["media"]["subscriptions_planned"] = 3  # type: ignore[index]
    problems = failures(report, **THRESHOLDS)  # type: ignore[arg-type]
    assert problems == [
        "1 of 3 participants never joined",
        "1 of 3 subscriptions never got a frame",
        "1 subscriptions below 12 fps (worst 10: s playing p)",
        "1 subscriptions lost more than 1% of video frames (worst 6.667%)",
        "chat lost 1 of 20 deliveries (5%, allowed 0%)",
        "2 errors (allowed 0): room_failed:room_full x2",
    ]
    report["failures"] = problems
    assert render_text(report).splitlines()[-1].startswith("FAILED: 1 of 3 participants never joined; ")
