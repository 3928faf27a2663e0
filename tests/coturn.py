"""coturn run from deploy/coturn/turnserver.conf, as an operator fills it in.

The tests keep every option of the file (the shared secret scheme, the
denied peer ranges, the quotas) and change only what a machine of its own
changes: the addresses, the secret, the relay ports, the one peer it may
relay to (the media server, on a private range the file denies), and no TLS
(no certificate here; ``turns:`` is TLS around the same TCP protocol).
"""

from __future__ import annotations

from pathlib import Path

from tests.netns import Host
from tests.processes import ROOT, ServerProcess

CONFIG = ROOT / "deploy" / "coturn" / "turnserver.conf"
# Options the tests set themselves (the rest of the file is kept as written).
REPLACED = {
    "listening-ip", "external-ip", "tls-listening-port", "cert", "pkey", "static-auth-secret",
    "min-port", "max-port", "log-file",
}


def coturn_config(*, address: str, secret: str, allowed_peer: str, ports: tuple[int, int], folder: Path) -> str:
    kept = [
        line for line in CONFIG.read_text().splitlines()
        if line.strip().split("=")[0] not in REPLACED
    ]
    return "\n".join([
        *kept,
        f"listening-ip={address}",
        f"relay-ip={address}",
        f"static-auth-secret={secret}",
        f"allowed-peer-ip={allowed_peer}",
        f"min-port={ports[0]}",
        f"max-port={ports[1]}",
        "no-tls",
        "no-dtls",
        f"log-file={folder / 'turn.log'}",
        # Each allocation in the log, with the username it was granted to.
        "verbose",
        # Its user database (unused with a shared secret) in the test's folder, not /var/lib/turn.
        f"userdb={folder / 'turndb'}",
        "",
    ])


def coturn(host: Host, folder: Path, *, secret: str, allowed_peer: str,
           ports: tuple[int, int] = (49160, 49199)) -> ServerProcess:
    """coturn in ``host``'s namespace on its address, port 3478 (started, listening)."""
    config = folder / "turnserver.conf"
    config.write_text(
        coturn_config(address=host.address, secret=secret, allowed_peer=allowed_peer, ports=ports, folder=folder)
    )
    args = host.command("turnserver", "-c", str(config), "--pidfile", str(folder / "turnserver.pid"))
    server = ServerProcess("coturn", args, {}, folder / "coturn-stdout.log")
    server.start()
    # It writes its log itself (simple-log: under that very name): read that.
    server.log_path = folder / "turn.log"
    server.wait_for_log("Total General servers", timeout=15)
    return server
