"""Recording files over HTTP: paths kept inside RECORDINGS_ROOT, byte ranges.

Django's FileResponse answers every request with the whole file, and players
seek (and browsers resume downloads) with ``Range`` requests, so this module
answers single byte ranges itself (RFC 9110 §14). Bodies are read in chunks;
under ASGI the chunks come from an async iterator reading in a worker thread,
because Django turns a synchronous iterator into a list (the whole file in
memory) before sending it over ASGI, and because the event loop of a web
process also carries signaling and, in the embedded default, media. Under
daphne the next chunk is read only once the connection's write buffer has
drained (conference_site/backpressure.py), so a slow reader costs an open
file, not the file in memory.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header, http_date, parse_http_date_safe

from recording.models import Recording
from recording.services import PLAYABLE_STATUSES, recording_file_path, recordings_root

CHUNK_BYTES = 256 * 1024

CONTENT_TYPES = {
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mp4": "video/mp4",
    ".json": "application/json",
    ".zip": "application/zip",
}

# At most 18 digits: larger offsets do not exist, and int() of a huge digit
# string is slow or refused.
_RANGE_HEADER = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")


def downloadable_file(recording: Recording, relative_path: str) -> Path | None:
    """One of the recording's files (its media or its sidecar), when it may be downloaded."""
    if recording.status not in PLAYABLE_STATUSES:
        return None
    return recording_file_path(relative_path)


def content_type_for(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as Content-Range writes it

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class RangeNotSatisfiable(Exception):
    pass


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a ``Range`` header asks of a file of ``size`` bytes.

    None means "send the whole file": for no header, and for headers this
    server does not answer with a range (other units, several ranges, a
    malformed or reversed range), which RFC 9110 §14.2 lets a server ignore.
    Raises RangeNotSatisfiable when the range starts past the end.
    """
    if not header:
        return None
    match = _RANGE_HEADER.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first:
        start = int(first)
        if last and int(last) < start:
            return None
        if start >= size:
            raise RangeNotSatisfiable
        return ByteRange(start, min(int(last), size - 1) if last else size - 1)
    if not last:
        return None
    suffix_length = int(last)
    if suffix_length == 0 or size == 0:
        raise RangeNotSatisfiable
    return ByteRange(max(0, size - suffix_length), size - 1)


def _range_still_valid(request: HttpRequest, etag: str, modified_s: int) -> bool:
    """Whether an ``If-Range`` precondition (if any) holds: the file is the one the client has part of.

    A remix replaces a room's file under the same name; resuming a download
    across that would splice two files together.
    """
    condition = request.headers.get("If-Range")
    if condition is None:
        return True
    if condition.startswith(('"', "W/")):
        return condition == etag
    return parse_http_date_safe(condition) == modified_s


class _FileSlice:
    """``length`` bytes of an open file from ``start``.

    It owns the file: closes it at the end of the slice, and the response
    closes it too (through ``close``) when a client goes away early.
    """

    def __init__(self, file: BinaryIO, start: int, length: int) -> None:
        self._file = file
        self._start = start
        self._remaining = length
        self._positioned = False

    def _next_chunk(self) -> bytes:
        if not self._positioned:
            self._file.seek(self._start)
            self._positioned = True
        if self._remaining <= 0:
            return b""
        chunk = self._file.read(min(CHUNK_BYTES, self._remaining))
        self._remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        self._file.close()


class FileSliceIterator(_FileSlice):
    def __iter__(self) -> Iterator[bytes]:
        while chunk := self._next_chunk():
            yield chunk
        self.close()


class AsyncFileSliceIterator(_FileSlice):
    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while chunk := await asyncio.to_thread(self._next_chunk):
            yield chunk
        self.close()


def ranged_file_response(request: HttpRequest, path: Path, *, filename: str) -> HttpResponse | StreamingHttpResponse:
    """The file at ``path`` as a download: 200 whole, 206 one range, 416 past the end; HEAD gets headers only."""
    if settings.RECORDS_ACCEL_REDIRECT:
        return _accel_redirect_response(path, filename=filename)
    file = path.open("rb")
    try:
        stat = os.fstat(file.fileno())
        size = stat.st_size
        modified_s = int(stat.st_mtime)
        etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
        try:
            byte_range = (
                requested_range(request.headers.get("Range"), size)
                if _range_still_valid(request, etag, modified_s)
                else None
            )
        except RangeNotSatisfiable:
            file.close()
            refusal = HttpResponse(status=416)
            refusal["Content-Range"] = f"bytes */{size}"
            return refusal
        start, length = (byte_range.start, byte_range.length) if byte_range else (0, size)
        response: HttpResponse | StreamingHttpResponse
        if request.method == "HEAD":
            file.close()
            response = HttpResponse(content_type=content_type_for(path))
        else:
            body = (AsyncFileSliceIterator if isinstance(request, ASGIRequest) else FileSliceIterator)(
                file, start, length
            )
            response = StreamingHttpResponse(body, content_type=content_type_for(path))
    except BaseException:
        file.close()
        raise
    if byte_range is not None:
        response.status_code = 206
        response["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Last-Modified"] = http_date(stat.st_mtime)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response


def _accel_redirect_response(path: Path, *, filename: str) -> HttpResponse:
    """Hand the file to the proxy in front (nginx ``X-Accel-Redirect``).

    The proxy serves the file (and its ranges) from disk, so a download,
    however slow its reader, holds no connection, file or task of a web
    process.
    """
    relative = path.resolve().relative_to(recordings_root().resolve())
    response = HttpResponse(content_type=content_type_for(path))
    response["X-Accel-Redirect"] = settings.RECORDS_ACCEL_REDIRECT.rstrip("/") + "/" + quote(relative.as_posix())
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response
