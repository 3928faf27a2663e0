"""Network namespaces a test builds for itself: hosts with real, non-loopback
addresses, without touching the host's network.

``machine()`` makes one namespace whose only non-loopback address sits on
an ``ifb`` device (this kernel has no ``dummy`` links); ``lan()`` makes two
namespaces joined by one veth pair, e.g. a server
machine (10.231.N.1) and another device on its LAN (10.231.N.2). Everything
is removed afterwards, also when the test fails: the processes still
running inside are killed, then the namespaces (and with them their links)
are deleted.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Host:
    """One namespace with one address on the LAN."""

    namespace: str
    address: str

    def command(self, *args: str) -> list[str]:
        """``args`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *args]

    def wrapper(self, executable: str, folder: Path) -> Path:
        """A script that runs ``executable`` inside this namespace (for launchers that take a path)."""
        path = folder / f"{self.namespace}-{Path(executable).name}"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {self.namespace} {executable} "$@"\n')
        path.chmod(0o755)
        return path


@dataclass(frozen=True)
class Lan:
    server: Host
    device: Host


def available() -> bool:
    """Whether this process may create namespaces (root with iproute2)."""
    return os.geteuid() == 0 and subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0


@contextmanager
def machine() -> Iterator[Host]:
    host = Host(f"conf-box-{secrets.token_hex(3)}", f"10.232.{secrets.randbelow(250) + 1}.1")
    try:
        _ip("netns", "add", host.namespace)
        _ip("-n", host.namespace, "link", "set", "lo", "up")
        _run(*host.command("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"))
        _ip("-n", host.namespace, "link", "add", "if0", "type", "ifb")
        _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "if0")
        _ip("-n", host.namespace, "link", "set", "if0", "up")
        yield host
    finally:
        namespace_remove(host.namespace)


@contextmanager
def lan() -> Iterator[Lan]:
    tag = secrets.token_hex(3)
    subnet = f"10.231.{secrets.randbelow(250) + 1}"
    server = Host(f"conf-srv-{tag}", f"{subnet}.1")
    device = Host(f"conf-dev-{tag}", f"{subnet}.2")
    created: list[str] = []
    try:
        for host in (server, device):
            _ip("netns", "add", host.namespace)
            created.append(host.namespace)
            _ip("-n", host.namespace, "link", "set", "lo", "up")
            # No IPv6 link-local noise: candidates are the IPv4 addresses only.
            _run(*host.command("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"))
        # Made inside the namespaces, so the link never exists on the host.
        _ip("-n", server.namespace, "link", "add", "lan0", "type", "veth", "peer", "name", "lan0",
            "netns", device.namespace)
        for host in (server, device):
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "lan0")
            _ip("-n", host.namespace, "link", "set", "lan0", "up")
        yield Lan(server, device)
    finally:
        for namespace in created:
            namespace_remove(namespace)


def namespace_remove(namespace: str) -> None:
    """Kill what still runs in ``namespace``, then delete it."""
    pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split()
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)


def _ip(*args: str) -> None:
    _run("ip", *args)


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")
