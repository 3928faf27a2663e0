"""deploy/ and the README's production steps agree: every placeholder of the
nginx site is filled by the README's sed, every unit it enables exists, one
beat only, every setting of the environment file is documented, and the
coturn example denies private networks. (The recipe itself runs in
tests/integration/test_production_recipe.py.)"""

from __future__ import annotations

import ipaddress
import re

from tests.processes import ROOT
from tests.recipe import ENV_EXAMPLE, NGINX_SITE, UNITS, env_file, nginx_site

README = (ROOT / "README.md").read_text()
PRODUCTION = README[README.index("\n## Production\n"):README.index("\n## Scaling out\n")]


def test_the_readmes_sed_fills_every_placeholder_of_the_nginx_site() -> None:
    filled = dict(re.findall(r"-e 's\|@([A-Z0-9_]+)@\|([^|]*)\|g?'", PRODUCTION))
    assert {"SERVER_NAME", "WEB_1", "WEB_2", "STATIC_ROOT", "RECORDINGS_ROOT"} <= filled.keys()
    site = nginx_site(filled)
    assert "server 127.0.0.1:8001 " in site and "server 127.0.0.1:8002 " in site
    assert f"{NGINX_SITE.relative_to(ROOT)} > /etc/nginx/sites-available/conference" in PRODUCTION


def test_the_units_the_readme_enables_exist_and_one_runs_beat() -> None:
    (enable,) = [line for line in PRODUCTION.splitlines() if line.startswith("systemctl enable --now")]
    for name in enable.split()[3:]:
        unit = f"{name.split('@')[0]}@.service" if "@" in name else f"{name}.service"
        assert (UNITS / unit).exists(), unit
    with_beat = [path.name for path in UNITS.glob("*.service")
                 if re.search(r"^ExecStart=.*(\sbeat\s|--beat)", path.read_text(), re.MULTILINE)]
    assert with_beat == ["conference-beat.service"]
    # Units read the environment file the README installs.
    for path in UNITS.glob("*.service"):
        assert "EnvironmentFile=/etc/conference/env" in path.read_text(), path.name
    assert f"{ENV_EXAMPLE.relative_to(ROOT)} /etc/conference/env" in PRODUCTION


def test_every_setting_of_the_environment_example_is_documented() -> None:
    table = README[README.index("\n## Configuration\n"):]
    for key in env_file():
        assert f"| `{key}` |" in table or f"`{key}`," in table, key


def test_the_turn_example_uses_a_shared_secret_and_denies_private_networks() -> None:
    text = (ROOT / "deploy" / "coturn" / "turnserver.conf").read_text()
    options = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert "use-auth-secret" in options
    assert any(line.startswith("static-auth-secret=") for line in options)
    for option in ("realm=", "min-port=", "max-port="):
        assert any(line.startswith(option) for line in options), option
    denied = [line.removeprefix("denied-peer-ip=").split("-") for line in options if line.startswith("denied-peer-ip=")]
    ranges = [(ipaddress.ip_address(r[0]), ipaddress.ip_address(r[-1])) for r in denied]
    for private in ("10.1.2.3", "172.20.0.1", "192.168.1.1", "127.0.0.1", "169.254.1.1", "100.64.0.1",
                    "fd00::1", "::1"):
        address = ipaddress.ip_address(private)
        assert any(low.version == address.version and int(low) <= int(address) <= int(high)
                   for low, high in ranges), private
    public = ipaddress.ip_address("203.0.113.10")
    assert not any(low.version == 4 and int(low) <= int(public) <= int(high) for low, high in ranges)
