"""Real server processes for integration tests: daphne, Celery.

Each is started with its own environment and log file, waited for by
polling its port or its log (never by a fixed sleep), and stopped with
SIGTERM then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 30) -> ServerProcess:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        if self.port is not None:
            self._wait_for_port(timeout)
        return self

    def _wait_for_port(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not listen on {self.port}:\n{self.log()}")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} never logged {text!r}:\n{self.log()}")

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/rooms/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no handler of the process runs."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def kill_children(self) -> list[int]:
        """SIGKILL the process's children (a Celery pool process running a task)."""
        assert self.process is not None
        children_file = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        children = [int(pid) for pid in children_file.read_text().split()]
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        return children

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def daphne(name: str, env: dict[str, str], log_dir: Path, *, access_log: bool = False) -> ServerProcess:
    """A daphne; with ``access_log`` it writes every request line to ``<log_dir>/<name>-access.log``."""
    port = free_port()
    args = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port)]
    if access_log:
        args += ["--access-log", str(log_dir / f"{name}-access.log")]
    return ServerProcess(name, [*args, "conference_site.asgi:application"], env, log_dir / f"{name}.log", port=port)


def celery_worker(
    name: str, env: dict[str, str], log_dir: Path, *, beat: bool = False, pool: str = "solo"
) -> ServerProcess:
    # prefork (with one child) when a test kills the child running a task
    args = [str(BIN / "celery"), "-A", "conference_site", "worker", "--loglevel", "INFO", "--pool", pool,
            "--concurrency", "1",
            "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"]
    if beat:
        args += ["--beat", "--schedule", str(log_dir / f"{name}-beat-schedule")]
    return ServerProcess(name, args, env, log_dir / f"{name}.log")


def celery_beat(name: str, env: dict[str, str], log_dir: Path) -> ServerProcess:
    """Celery beat alone, as a deployment runs it: it sends due tasks whether or not a worker runs."""
    args = [str(BIN / "celery"), "-A", "conference_site", "beat", "--loglevel", "INFO",
            "--schedule", str(log_dir / f"{name}-schedule")]
    return ServerProcess(name, args, env, log_dir / f"{name}.log")


def media_node(name: str, env: dict[str, str], log_dir: Path) -> ServerProcess:
    args = [sys.executable, "manage.py", "runmedianode"]
    return ServerProcess(name, args, env, log_dir / f"{name}.log")


@dataclass
class RedisServer:
    """A redis-server of a test's own, without persistence: a restart loses
    everything, and a flush touches nobody else's keys."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise TimeoutError(f"redis-server on {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL: without persistence its data is gone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_timeout=2)


def redis_keys_delete(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (a test's or benchmark's own namespace)."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
