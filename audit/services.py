"""Writing the audit trail."""

from __future__ import annotations

import ipaddress
from typing import Any

from audit.models import AuditEntry


def _address_or_none(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None  # a unix socket or a proxy's placeholder: not an address


def audit_record(
    *,
    actor: str,
    action: str,
    room: str = "",
    target: str = "",
    address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one entry (synchronously: call it through a database thread from async code)."""
    return AuditEntry.objects.create(
        actor=actor[:200],
        action=action[:64],
        room=room[:128],
        target=target[:200],
        address=_address_or_none(address),
        detail=detail or {},
    )
