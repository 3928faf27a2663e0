"""Room on disk for records: the quota (RECORDINGS_MAX_BYTES) and the free-space floor (RECORDINGS_MIN_FREE_MB).

Both are read from the settings at each check, so an operator's change (or
a test's) applies to the next record and to the records running.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from django.conf import settings

MB = 1_000_000
GB = 1_000_000_000


@dataclass(frozen=True)
class DiskRefusal:
    """Why a record does not start, or stops: ``info`` for the publisher, ``reason`` for the admin."""

    info: Literal["disk_quota", "disk_full"]
    reason: str


def size_text(size: int) -> str:
    """ "120 MB", "1.2 GB": sizes in the reasons an operator reads."""
    if size >= GB:
        return f"{size / GB:.1f} GB"
    if size >= 10 * MB:
        return f"{size / MB:.0f} MB"
    return f"{size / MB:.1f} MB" if size >= MB else f"{size} bytes"


def free_bytes(path: Path) -> int:
    """Free space an unprivileged writer has on the filesystem of ``path`` (one statvfs)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def free_space_refusal(path: Path) -> DiskRefusal | None:
    """A refusal while the free space at ``path`` is below RECORDINGS_MIN_FREE_MB, else None."""
    floor_mb: int = settings.RECORDINGS_MIN_FREE_MB
    if floor_mb <= 0:
        return None
    free = free_bytes(path)
    if free >= floor_mb * MB:
        return None
    return DiskRefusal("disk_full", f"free space {size_text(free)} below RECORDINGS_MIN_FREE_MB {floor_mb}")


def quota_refusal(used_bytes: int) -> DiskRefusal | None:
    """A refusal when ``used_bytes`` of records reach RECORDINGS_MAX_BYTES, else None."""
    limit: int = settings.RECORDINGS_MAX_BYTES
    if limit <= 0 or used_bytes < limit:
        return None
    return DiskRefusal(
        "disk_quota", f"disk quota RECORDINGS_MAX_BYTES reached: {size_text(used_bytes)} of {size_text(limit)}"
    )
