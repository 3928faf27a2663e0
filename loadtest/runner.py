"""A whole run: start the participants room by room, measure for the
duration while the rooms chat, stop, and gather the report."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from loadtest.config import LoadConfig
from loadtest.participants import Participant, RunState
from loadtest.progress import Progress
from loadtest.report import distribution, failures, media_summary
from loadtest.signaling import SignalingError
from rooms.media.peer import use_host_address

PROGRESS_EVERY_S = 0.5
# After the last chat message, how long deliveries may still come in.
CHAT_DRAIN_S = 5.0
STOP_TIMEOUT_S = 20.0



async def polled_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Whether ``predicate`` came true within ``timeout`` s, polled every 50 ms.

    Frames and deliveries arrive on many connections, with no one event
    that says "all of them".
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True

class LoadTestAbort(Exception):
    """The run could not start: the server is unreachable or refuses the participants."""


def plan(config: LoadConfig, run_id: str) -> list[tuple[str, str, str]]:
    """(room, name, role) of every participant: all publishers first, so subscribers find streams to play."""
    rooms = [f"{config.room_prefix}-{run_id}-{r}" for r in range(config.rooms)]
    publishers = [(room, f"lt{run_id}-r{r}-pub{p}", "publisher")
                  for r, room in enumerate(rooms) for p in range(config.publishers)]
    subscribers = [(room, f"lt{run_id}-r{r}-sub{s}", "subscriber")
                   for r, room in enumerate(rooms) for s in range(config.subscribers)]
    return publishers + subscribers


class Run:
    def __init__(self, config: LoadConfig, progress: Progress) -> None:
        self.config = config
        self.progress = progress
        self.run_id = secrets.token_hex(3)
        self.state = RunState(config)
        self.participants = [Participant(self.state, room, name, role)  # type: ignore[arg-type]
                             for room, name, role in plan(config, self.run_id)]
        self.phase = "starting"
        self.window_started: float | None = None
        self.window_s = 0.0

    # --- Progress --------------------------------------------------------------------------------------------------

    def status_line(self) -> str:
        joined = sum(p.joined for p in self.participants)
        publishing = sum(p.publish_ms is not None for p in self.participants)
        subscriptions = self.state.subscriptions
        playing = sum(s.video.first_at is not None for s in subscriptions)
        frames = sum(s.video.frames for s in subscriptions)
        chat = self.state.chat
        clock = ""
        if self.window_started is not None:
            clock = f" {min(time.monotonic() - self.window_started, self.config.duration_s):.0f}/" \
                    f"{self.config.duration_s:g} s |"
        return (f"{self.phase}:{clock} joined {joined}/{len(self.participants)} | publishing {publishing}/"
                f"{self.config.rooms * self.config.publishers} | playing {playing}/{self.config.subscriptions} | "
                f"frames {frames} | chat {chat.delivered}/{chat.expected} | errors {self.state.errors.count}")

    async def _show_progress(self) -> None:
        while True:
            self.progress.show(self.status_line())
            await asyncio.sleep(PROGRESS_EVERY_S)

    # --- Phases ----------------------------------------------------------------------------------------------------

    async def preflight(self) -> None:
        """One connection first: a wrong URL, Origin or key ends the run here, with the reason."""
        first = self.participants[0]
        probe = Participant(RunState(self.config), first.room, first.name + "-probe", first.role)
        try:
            await probe.connect()
        except SignalingError as error:
            raise LoadTestAbort(error.message) from None
        finally:
            await probe.leave()

    async def _start_all(self, role: str) -> None:
        group = [p for p in self.participants if p.role == role]

        async def start(index: int, participant: Participant) -> None:
            # Paced: the server limits joins per second from one address.
            await asyncio.sleep(index / self.config.join_rate)
            await participant.start()

        await asyncio.gather(*(start(i, p) for i, p in enumerate(group)))

    async def setup(self) -> None:
        config = self.config
        self.phase = "publishers"
        try:
            async with asyncio.timeout(config.setup_timeout_s * 2):
                await self._start_all("publisher")
                self.phase = "subscribers"
                await self._start_all("subscriber")
        except TimeoutError:
            self.state.errors.add("setup_timeout", "run", "joining took longer than twice --setup-timeout")
        self.phase = "first frames"
        if not await polled_until(self._all_playing, config.setup_timeout_s):
            self.state.errors.add("setup_timeout", "run", "not every subscription got a first frame within "
                                  f"{config.setup_timeout_s:g} s")
        # A publisher slowed while everyone connected sends the frames it owes at once; not in the window.
        self.phase = "warming up"
        await asyncio.sleep(config.warmup_s)

    def _all_playing(self) -> bool:
        subscriptions = self.state.subscriptions
        return len(subscriptions) >= self.config.subscriptions and all(
            s.video.first_at is not None for s in subscriptions)

    async def measure(self) -> None:
        config = self.config
        self.phase = "measuring"
        started = self.window_started = time.monotonic()
        for subscription in self.state.subscriptions:
            subscription.window_start(started)
        chatters = [asyncio.create_task(self._chat(room)) for room in self._rooms()] if config.chat_rate else []
        await asyncio.sleep(config.duration_s)
        for task in chatters:
            task.cancel()
        ended = time.monotonic()
        for subscription in self.state.subscriptions:
            if subscription.window_from is None:  # started playing after the window opened
                subscription.window_start(started)
            subscription.window_end(ended)
        self.window_s = ended - started
        if chatters:
            self.phase = "chat drain"
            await polled_until(self._chat_settled, CHAT_DRAIN_S)

    def _chat_settled(self) -> bool:
        chat = self.state.chat
        answered = all(m.accepted for m in chat.messages.values())
        return answered and chat.all_delivered()

    def _rooms(self) -> list[str]:
        return list(dict.fromkeys(p.room for p in self.participants))

    async def _chat(self, room: str) -> None:
        """``chat_rate`` messages a second into ``room``, its participants taking turns."""
        members = [p for p in self.participants if p.room == room and p.joined]
        if not members:
            return
        interval = 1 / self.config.chat_rate
        next_at = time.monotonic()
        turn = 0
        while True:
            members[turn % len(members)].chat_soon()
            turn += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def stop(self) -> None:
        self.phase = "leaving"
        for participant in self.participants:
            participant.stop_listening()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await asyncio.gather(*(p.leave() for p in self.participants), return_exceptions=True)
                await asyncio.gather(*(s.pc.close() for s in self.state.subscriptions), return_exceptions=True)

    # --- The whole run ---------------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        use_host_address(self.config.media_ip)
        await self.preflight()
        shower = asyncio.create_task(self._show_progress())
        try:
            await self.setup()
            await self.measure()
            results = [await s.result(self.config.fps) for s in self.state.subscriptions]
        finally:
            await self.stop()
            shower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await shower
            self.phase = "done"
            self.progress.show(self.status_line(), force=True)
            self.progress.finish()
        return self.report(results)

    def report(self, results: list[Any]) -> dict[str, Any]:
        config = self.config
        participants = self.participants
        thresholds = asdict(config.thresholds)
        thresholds["min_fps"] = config.min_fps
        report: dict[str, Any] = {
            "config": {
                "url": config.url, "rooms": config.rooms, "publishers": config.publishers,
                "subscribers": config.subscribers, "chat_rate": config.chat_rate, "duration_s": config.duration_s,
                "warmup_s": config.warmup_s,
                "video": f"{config.width}x{config.height}@{config.fps}", "fps": config.fps, "audio": config.audio,
                "token_mode": config.token_mode, "run_id": self.run_id,
            },
            "window_s": round(self.window_s, 3),
            "participants": {"planned": len(participants), "joined": sum(p.joined for p in participants)},
            "connect_ms": distribution([p.connect_ms for p in participants if p.connect_ms is not None]),
            "join_ms": distribution([p.join_ms for p in participants if p.join_ms is not None]),
            "publishing": sum(p.publish_ms is not None for p in participants),
            "publish_ms": distribution([p.publish_ms for p in participants if p.publish_ms is not None]),
            "media": media_summary(results, config.subscriptions),
            "chat": self.state.chat.summary() if config.chat_rate else None,
            "errors": self.state.errors.summary(),
            "subscriptions": [r.as_dict() for r in results],
            "thresholds": thresholds,
        }
        report["failures"] = failures(report, max_errors=config.thresholds.max_errors,
                                      max_chat_loss=config.thresholds.max_chat_loss,
                                      max_video_loss=config.thresholds.max_video_loss, min_fps=config.min_fps)
        report["passed"] = not report["failures"]
        return report
