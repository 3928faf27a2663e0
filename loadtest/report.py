"""The numbers of a run: distributions, frame loss, thresholds, the text report.

Pure functions of what the clients counted, so the arithmetic is tested
apart from any server.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

PERCENTILES = (50, 95, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between the closest ranks (as numpy's default)."""
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be 0 to 100, not {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def distribution(values: Sequence[float]) -> dict[str, float] | None:
    """count, min, p50, p95, p99, max and mean, rounded to 0.1; None without values."""
    if not values:
        return None
    summary: dict[str, float] = {"count": len(values), "min": round(min(values), 1)}
    for q in PERCENTILES:
        summary[f"p{q}"] = round(percentile(values, q), 1)
    summary["max"] = round(max(values), 1)
    summary["mean"] = round(sum(values) / len(values), 1)
    return summary


def frames_expected(first_timestamp: int, last_timestamp: int, step: float) -> int:
    """Frames a paced source sent from the first to the last received one.

    A paced track stamps frame n with n * step (RTP clock ticks); the
    receiver's timestamps are rebased and unwrapped, so the span divided by
    the step counts every frame sent in it, received or not.
    """
    if last_timestamp < first_timestamp:
        raise ValueError("the last timestamp is before the first")
    return round((last_timestamp - first_timestamp) / step) + 1


@dataclass
class SubscriptionResult:
    """One subscriber playing one publisher's stream."""

    room: str
    subscriber: str
    publisher: str
    stream: str
    first_frame_ms: float | None = None
    frames: int = 0
    frames_expected: int = 0
    window_frames: int = 0
    window_s: float = 0.0
    audio_frames: int = 0
    audio_expected: int = 0
    packets_received: int = 0
    packets_lost: int = 0

    @property
    def fps(self) -> float:
        return self.window_frames / self.window_s if self.window_s > 0 else 0.0

    @property
    def frames_lost(self) -> int:
        return max(0, self.frames_expected - self.frames)

    @property
    def video_loss_percent(self) -> float:
        return 100 * self.frames_lost / self.frames_expected if self.frames_expected else 0.0

    @property
    def audio_loss_percent(self) -> float:
        lost = max(0, self.audio_expected - self.audio_frames)
        return 100 * lost / self.audio_expected if self.audio_expected else 0.0

    def as_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        fields.update(fps=round(self.fps, 2), frames_lost=self.frames_lost,
                      video_loss_percent=round(self.video_loss_percent, 3),
                      audio_loss_percent=round(self.audio_loss_percent, 3))
        return fields


def media_summary(subscriptions: Sequence[SubscriptionResult], planned: int) -> dict[str, Any]:
    playing = [s for s in subscriptions if s.first_frame_ms is not None]
    expected = sum(s.frames_expected for s in playing)
    lost = sum(s.frames_lost for s in playing)
    audio_expected = sum(s.audio_expected for s in playing)
    audio_lost = sum(max(0, s.audio_expected - s.audio_frames) for s in playing)
    packets = sum(s.packets_received + s.packets_lost for s in playing)
    return {
        "subscriptions_planned": planned,
        "subscriptions_playing": len(playing),
        "first_frame_ms": distribution([s.first_frame_ms for s in playing if s.first_frame_ms is not None]),
        "fps": distribution([s.fps for s in subscriptions]),
        "video_frames": sum(s.frames for s in playing),
        "video_frames_lost": lost,
        "video_loss_percent": round(100 * lost / expected, 3) if expected else 0.0,
        "worst_video_loss_percent": round(max((s.video_loss_percent for s in playing), default=0.0), 3),
        "audio_frames": sum(s.audio_frames for s in playing),
        "audio_loss_percent": round(100 * audio_lost / audio_expected, 3) if audio_expected else 0.0,
        "rtp_packets_lost": sum(s.packets_lost for s in playing),
        "rtp_loss_percent": round(100 * sum(s.packets_lost for s in playing) / packets, 3) if packets else 0.0,
    }


def failures(report: dict[str, Any], *, max_errors: int, max_chat_loss: float, max_video_loss: float,
             min_fps: float) -> list[str]:
    """Why the run fails its thresholds, one sentence each; empty when it passes."""
    problems = []
    participants = report["participants"]
    if participants["joined"] < participants["planned"]:
        problems.append(f"{participants['planned'] - participants['joined']} of {participants['planned']} "
                        "participants never joined")
    media = report["media"]
    missing = media["subscriptions_planned"] - media["subscriptions_playing"]
    if missing:
        problems.append(f"{missing} of {media['subscriptions_planned']} subscriptions never got a frame")
    slow = [s for s in report["subscriptions"] if s["first_frame_ms"] is not None and s["fps"] < min_fps]
    if slow:
        worst = min(slow, key=lambda s: s["fps"])
        problems.append(f"{len(slow)} subscriptions below {min_fps:g} fps (worst {worst['fps']:g}: "
                        f"{worst['subscriber']} playing {worst['publisher']})")
    lossy = [s for s in report["subscriptions"] if s["video_loss_percent"] > max_video_loss]
    if lossy:
        worst = max(lossy, key=lambda s: s["video_loss_percent"])
        problems.append(f"{len(lossy)} subscriptions lost more than {max_video_loss:g}% of video frames "
                        f"(worst {worst['video_loss_percent']:g}%)")
    chat = report["chat"]
    if chat is not None and chat["loss_percent"] > max_chat_loss:
        problems.append(f"chat lost {chat['lost']} of {chat['expected_deliveries']} deliveries "
                        f"({chat['loss_percent']:g}%, allowed {max_chat_loss:g}%)")
    errors = report["errors"]["count"]
    if errors > max_errors:
        codes = ", ".join(f"{code} x{count}" for code, count in report["errors"]["by_code"].items())
        problems.append(f"{errors} errors (allowed {max_errors}): {codes}")
    return problems


def _ms(summary: dict[str, float] | None, *keys: str) -> str:
    if summary is None:
        return "none"
    return ", ".join(f"{key} {summary[key]:g}" for key in keys) + " ms"


def render_text(report: dict[str, Any]) -> str:
    config, media, chat = report["config"], report["media"], report["chat"]
    participants = report["participants"]
    fps = media["fps"]
    lines = [
        f"Load test of {config['url']}: {config['rooms']} rooms x ({config['publishers']} publishers + "
        f"{config['subscribers']} subscribers), {config['video']}, chat {config['chat_rate']:g}/s per room, "
        f"{report['window_s']:g} s measured ({'access tokens' if config['token_mode'] else 'open rooms'})",
        f"  joined        {participants['joined']}/{participants['planned']}; "
        f"connect {_ms(report['connect_ms'], 'p50', 'p95', 'max')}; join {_ms(report['join_ms'], 'p50', 'p95', 'max')}",
        f"  publishing    {report['publishing']}/{config['rooms'] * config['publishers']}; "
        f"publish to PUBLISHING {_ms(report['publish_ms'], 'p50', 'p95', 'max')}",
        f"  first frame   {media['subscriptions_playing']}/{media['subscriptions_planned']} subscriptions; "
        f"{_ms(media['first_frame_ms'], 'p50', 'p95', 'max')}",
        "  fps           " + ("none" if fps is None else f"min {fps['min']:g}, p50 {fps['p50']:g}, "
                              f"mean {fps['mean']:g} (published {config['fps']})"),
        f"  video loss    {media['video_frames_lost']} of {media['video_frames'] + media['video_frames_lost']} "
        f"frames ({media['video_loss_percent']:g}%, worst subscription {media['worst_video_loss_percent']:g}%); "
        f"RTP packets lost {media['rtp_packets_lost']} ({media['rtp_loss_percent']:g}%)",
    ]
    if config["audio"]:
        lines.append(f"  audio         {media['audio_frames']} frames, loss {media['audio_loss_percent']:g}%")
    if chat is not None:
        lines.append(f"  chat          {chat['accepted']} accepted of {chat['sent']} sent, {chat['delivered']}/"
                     f"{chat['expected_deliveries']} delivered (loss {chat['loss_percent']:g}%); "
                     f"latency {_ms(chat['latency_ms'], 'p50', 'p95', 'p99', 'max')}")
    errors = report["errors"]
    codes = ", ".join(f"{code} x{count}" for code, count in errors["by_code"].items())
    lines.append(f"  errors        {errors['count']}" + (f": {codes}" if codes else ""))
    for sample in errors["samples"][:5]:
        lines.append(f"                {sample['at_s']:g} s {sample['who']}: {sample['code']} {sample['detail']}")
    if report["failures"]:
        lines.append("FAILED: " + "; ".join(report["failures"]))
    else:
        lines.append("PASSED")
    return "\n".join(lines)
