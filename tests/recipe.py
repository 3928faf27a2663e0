"""The production recipe in deploy/, run as written: its systemd units' commands,
its environment file, its nginx site with the placeholders filled.

The tests start these processes themselves (no systemd here) from the units'
``ExecStart`` lines, with the virtualenv and working folder of this checkout
instead of /srv/conference.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import time
from pathlib import Path

from tests.processes import BIN, ROOT, ServerProcess

DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
NGINX_SITE = DEPLOY / "nginx" / "conference.conf"
ENV_EXAMPLE = DEPLOY / "env.example"
INSTALLED_VENV_BIN = "/srv/conference/.venv/bin/"
PLACEHOLDER = re.compile(r"@[A-Z0-9_]+@")


def env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=value lines as systemd's EnvironmentFile= reads them (a value may be in single quotes)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == "'" else value
    return values


def unit_command(unit: str, instance: str = "") -> list[str]:
    """The ``ExecStart`` of ``unit``, with ``%i`` and ``%H`` expanded and this checkout's virtualenv."""
    (line,) = [line for line in (UNITS / unit).read_text().splitlines() if line.startswith("ExecStart=")]
    args = shlex.split(line.removeprefix("ExecStart="))
    expanded = [arg.replace("%i", instance).replace("%H", socket.gethostname()) for arg in args]
    if expanded[0].startswith(INSTALLED_VENV_BIN):
        expanded[0] = str(BIN / expanded[0].removeprefix(INSTALLED_VENV_BIN))
    return expanded


def unit_process(unit: str, name: str, env: dict[str, str], log_dir: Path, *, instance: str = "",
                 port: int | None = None) -> ServerProcess:
    return ServerProcess(name, unit_command(unit, instance), env, log_dir / f"{name}.log", port=port)


def nginx_site(values: dict[str, str]) -> str:
    """deploy/nginx/conference.conf with every placeholder replaced (what the README's sed does)."""
    text = NGINX_SITE.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = [line for line in text.splitlines() if PLACEHOLDER.search(line) and not line.lstrip().startswith("#")]
    assert not left, f"placeholders left: {left}"
    return text


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    certificate, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=IP:{host}", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return certificate, key


# The nginx.conf around the site: what Debian's /etc/nginx/nginx.conf does,
# with every file of nginx's own in the test's folder. The log line names the
# upstream that answered and the bytes nginx itself sent.
NGINX_MAIN = """\
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    log_format recipe '$request_method $request_uri $status $body_bytes_sent $server_protocol upstream=$upstream_addr';
    access_log {prefix}/access.log recipe;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/conference.conf;
}}
"""


class Nginx:
    """Debian's nginx in the foreground, with its prefix, logs and pid in ``prefix``."""

    def __init__(self, prefix: Path, site: str, *, https_port: int) -> None:
        self.prefix = prefix
        self.https_port = https_port
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "conference.conf").write_text(site)
        # As root the workers would run as nobody, who cannot enter the test's folders.
        user = "user root;" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(NGINX_MAIN.format(user=user, prefix=prefix))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> Nginx:
        args = ["nginx", "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")]
        test = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
        assert test.returncode == 0, test.stderr
        with (self.prefix / "stderr.log").open("wb") as log:
            self.process = subprocess.Popen([*args, "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{self.error_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nginx did not listen on {self.https_port}:\n{self.error_log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # QUIT: graceful stop of the master and its workers.
            os.killpg(self.process.pid, 3)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(10)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/"

    def access_log(self) -> str:
        path = self.prefix / "access.log"
        return path.read_text() if path.exists() else ""

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")
