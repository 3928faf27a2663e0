"""Network namespaces a test builds for itself: hosts with real, non-loopback
addresses, without touching the host's network.

``machine()`` makes one namespace whose only non-loopback address sits on
an ``ifb`` device (this kernel has no ``dummy`` links); ``lan()`` makes two
namespaces joined by one veth pair, e.g. a server
machine (10.231.N.1) and another device on its LAN (10.231.N.2).
``behind_nat()`` makes a client at home behind a masquerading router, and a
server on the "internet" segment (10.233.N.0/24) that router reaches: either
reachable at its own address, or itself behind a 1:1 NAT on a private
network (``server_nat_1_1=True``), as a cloud VM is. Everything is removed
afterwards, also when the test fails: the processes still running inside
are killed, then the namespaces (and with them their links and nftables
rules) are deleted.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.processes import ServerProcess


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


@dataclass(frozen=True)
class Router:
    """A namespace that forwards between two links, with nftables rules of its own."""

    namespace: str

    def counter(self, name: str) -> int:
        """Packets counted by the named nftables counter ``name`` (table ``inet path``)."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.namespace, "nft", "-j", "list", "counter", "inet", "path", name],
            capture_output=True, text=True, check=True,
        )
        for item in json.loads(result.stdout)["nftables"]:
            if "counter" in item:
                packets: int = item["counter"]["packets"]
                return packets
        raise LookupError(name)


@dataclass(frozen=True)
class NatPath:
    """A client at home and a server it reaches across NAT."""

    client: Host  # 192.168.N.2, default route through ``home``
    home: Router  # masquerades the client's traffic onto the internet segment
    server: Host  # the server's own address (private when it is behind 1:1 NAT)
    # Where the internet reaches the server: its own address, or the 1:1 NAT's.
    server_public: str
    edge: Router | None = None  # the 1:1 NAT in front of the server, if any


@dataclass(frozen=True)
class Star:
    """A server with one link of its own to each client (10.234.N.0/24 for link N)."""

    server: Host  # at its address on the first link
    clients: list[Host]
    # The server's end of each client's link (in ``server.namespace``), and its address there.
    links: list[str]
    server_addresses: list[str]

    def shape(self, client: int, rate: str) -> None:
        """Let the server send to client ``client`` at ``rate`` (tc syntax, e.g. ``300kbit``) at most.

        A token bucket on the server's end of that link: what the link cannot
        carry waits in a short queue, then is dropped, as on a slow line.
        ``netem`` is not available in this kernel; ``tbf`` is.
        """
        _run("ip", "netns", "exec", self.server.namespace, "tc", "qdisc", "replace", "dev", self.links[client],
             "root", "tbf", "rate", rate, "burst", "4kb", "latency", "100ms")

    def unshape(self, client: int) -> None:
        _run("ip", "netns", "exec", self.server.namespace, "tc", "qdisc", "del", "dev", self.links[client], "root")


@contextmanager
def star(count: int) -> Iterator[Star]:
    tag = secrets.token_hex(3)
    base = secrets.randbelow(200) + 1
    server_namespace = f"conf-srv-{tag}"
    clients = [Host(f"conf-c{number}-{tag}", f"10.234.{base + number}.2") for number in range(count)]
    links = [f"link{number}" for number in range(count)]
    created: list[str] = []
    try:
        for namespace in [server_namespace] + [client.namespace for client in clients]:
            _namespace_add(namespace)
            created.append(namespace)
        for number, (client, link) in enumerate(zip(clients, links, strict=True)):
            subnet = f"10.234.{base + number}"
            _ip("-n", server_namespace, "link", "add", link, "type", "veth", "peer", "name", "lan0",
                "netns", client.namespace)
            _ip("-n", server_namespace, "addr", "add", f"{subnet}.1/24", "dev", link)
            _ip("-n", server_namespace, "link", "set", link, "up")
            _ip("-n", client.namespace, "addr", "add", f"{client.address}/24", "dev", "lan0")
            _ip("-n", client.namespace, "link", "set", "lan0", "up")
        addresses = [f"10.234.{base + number}.1" for number in range(count)]
        yield Star(Host(server_namespace, addresses[0]), clients, links, addresses)
    finally:
        for namespace in created:
            namespace_remove(namespace)


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


@contextmanager
def behind_nat(*, udp_to_server: bool = True, server_nat_1_1: bool = False) -> Iterator[NatPath]:
    """A client behind a home router's masquerade, and a server on the internet segment.

    ``udp_to_server=False``: the home router drops UDP to the server's
    public address (counter ``udp_to_server_dropped``), as networks that let
    only TCP out do; TCP passes. ``server_nat_1_1``: the server sits on a
    private network (172.30.N.5) behind an edge router that maps the public
    address 10.233.N.1 to it, every port, both ways; nobody outside can
    reach the private address.
    """
    tag = secrets.token_hex(3)
    n = secrets.randbelow(250) + 1
    internet, home_lan, private = f"10.233.{n}", f"192.168.{n}", f"172.30.{n}"
    client = Host(f"conf-cli-{tag}", f"{home_lan}.2")
    home = Router(f"conf-home-{tag}")
    public = f"{internet}.1"
    edge = Router(f"conf-edge-{tag}") if server_nat_1_1 else None
    server = Host(f"conf-srv-{tag}", f"{private}.5" if server_nat_1_1 else public)
    created: list[str] = []
    try:
        for namespace in [client.namespace, home.namespace, server.namespace] + ([edge.namespace] if edge else []):
            _namespace_add(namespace)
            created.append(namespace)
        _veth(client.namespace, f"{home_lan}.2", home.namespace, f"{home_lan}.1", "lan0")
        _ip("-n", client.namespace, "route", "add", "default", "via", f"{home_lan}.1")
        if edge is None:
            _veth(home.namespace, f"{internet}.2", server.namespace, public, "wan0")
        else:
            _veth(home.namespace, f"{internet}.2", edge.namespace, public, "wan0")
            _veth(edge.namespace, f"{private}.1", server.namespace, server.address, "dmz0")
            _ip("-n", server.namespace, "route", "add", "default", "via", f"{private}.1")
            _forwarding(edge.namespace)
            _nft(edge.namespace, _EDGE_RULES.format(public=public, private=server.address))
        _forwarding(home.namespace)
        udp_rule = "" if udp_to_server else (
            f'iifname "lan0" ip daddr {public} meta l4proto udp counter name udp_to_server_dropped drop'
        )
        _nft(home.namespace, _HOME_RULES.format(udp_rule=udp_rule))
        yield NatPath(client=client, home=home, server=server, server_public=public, edge=edge)
    finally:
        for namespace in created:
            namespace_remove(namespace)


# The home router: the client's traffic leaves masqueraded, nothing from the
# internet comes in unasked.
_HOME_RULES = """
table inet path {{
    counter udp_to_server_dropped {{ }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        {udp_rule}
        iifname "lan0" oifname "wan0" accept
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat;
        oifname "wan0" masquerade
    }}
}}
"""

# The edge of a cloud: the public address is the private one's, every port
# both ways (1:1 NAT); the private network is reached by nothing else.
_EDGE_RULES = """
table inet path {{
    chain prerouting {{
        type nat hook prerouting priority dstnat;
        iifname "wan0" ip daddr {public} dnat ip to {private}
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        ct status dnat accept
        iifname "dmz0" oifname "wan0" accept
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat;
        oifname "wan0" ip saddr {private} snat ip to {public}
    }}
}}
"""


def _namespace_add(namespace: str) -> None:
    _ip("netns", "add", namespace)
    _ip("-n", namespace, "link", "set", "lo", "up")
    # No IPv6 link-local noise: candidates are the IPv4 addresses only.
    _run("ip", "netns", "exec", namespace, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")


def _veth(a: str, a_address: str, b: str, b_address: str, name: str) -> None:
    """A veth pair ``name`` between namespaces ``a`` and ``b``, made inside them (never on the host)."""
    _ip("-n", a, "link", "add", name, "type", "veth", "peer", "name", name, "netns", b)
    for namespace, address in ((a, a_address), (b, b_address)):
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", name)
        _ip("-n", namespace, "link", "set", name, "up")


def _forwarding(namespace: str) -> None:
    _run("ip", "netns", "exec", namespace, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")


def _nft(namespace: str, rules: str) -> None:
    result = subprocess.run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], input=rules,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nft in {namespace} failed: {result.stderr.strip()}")


# What only the other tests set: a server in a namespace runs as an operator starts it.
TEST_SETTINGS = ("MEDIA_HOST_IP", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "LIVE_STATE_PREFIX",
                 "ALLOWED_HOSTS", "VAR_DIR", "MEDIA_UDP_PORTS", "ICE_SERVERS", "MEDIA_DENIED_PEER_NETWORKS")
SERVE_PORT = 8000  # each namespace is a machine of its own: make run's port is free there


def serve(host: Host, folder: Path, name: str = "serve", port: int = SERVE_PORT, **settings: str) -> ServerProcess:
    """``manage.py serve --host 0.0.0.0`` in ``host``'s namespace with ``settings`` (started, serving)."""
    env = {key: value for key, value in os.environ.items() if key not in TEST_SETTINGS}
    env.update(VAR_DIR=str(folder / f"{name}-var"), PYTHONUNBUFFERED="1", **settings)
    args = host.command(sys.executable, "manage.py", "serve", "--host", "0.0.0.0", "--port", str(port))
    server = ServerProcess(name, args, env, folder / f"{name}.log")
    server.start()
    try:
        server.wait_for_log("Conference server running", timeout=60)
    except BaseException:
        server.stop()
        raise
    return server


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
