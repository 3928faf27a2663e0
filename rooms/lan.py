"""Serving the embedded server to other devices on the same network.

Browsers give cameras only to secure contexts: https://, or http:// on
127.0.0.1/localhost. Another laptop on the LAN opening http://<address>/
gets no camera, so ``serve --self-signed`` serves https:// with a
certificate made here for this machine's addresses (the browser warns once;
a person accepts it). Behind a real TLS proxy use ``HTTPS=true`` instead.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import ifaddr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERTIFICATE_DAYS = 365


def interface_addresses() -> list[str]:
    """This machine's IPv4 addresses others on its networks can reach (no loopback)."""
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if ip.is_IPv4 and not ipaddress.ip_address(str(ip.ip)).is_loopback:
                found.append(str(ip.ip))
    return sorted(set(found), key=ipaddress.ip_address)


def self_signed_certificate(folder: Path, addresses: list[str]) -> tuple[Path, Path]:
    """A certificate and key for ``addresses`` (plus localhost), kept in ``folder``.

    Made again only when the addresses changed, so the browser's exception
    for it lasts between runs.
    """
    names = sorted({"127.0.0.1", *filter(_is_ip, addresses)}, key=ipaddress.ip_address)
    certificate_path, key_path = folder / "self-signed.crt", folder / "self-signed.key"
    if certificate_path.exists() and key_path.exists() and _covers(certificate_path, names):
        return certificate_path, key_path
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conference server (self-signed)")])
    now = datetime.datetime.now(datetime.UTC)
    alternative_names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(name)) for name in names]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate_path, key_path


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _covers(certificate_path: Path, names: list[str]) -> bool:
    certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
    if certificate.not_valid_after_utc < datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1):
        return False
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    covered = {str(address) for address in extension.value.get_values_for_type(x509.IPAddress)}
    return covered == set(names)
