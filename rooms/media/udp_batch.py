"""Send a batch of datagrams to one address in as few system calls as Linux allows.

UDP generic segmentation offload (``UDP_SEGMENT``, Linux 4.18+) lets one
``sendmsg`` carry several datagrams laid end to end, cut by the kernel
every ``segment`` bytes; all but the last must be exactly that size. A
video frame's RTP packets are (the packetizers cut equal chunks and the
last one is shorter), so one frame to one subscriber is usually one system
call. Where segmentation is refused, each datagram goes by ``sendto``.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from collections.abc import Sequence

# From <linux/udp.h>; Python's socket module names neither on 3.11.
SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
# The kernel's limits for one segmented send (UDP_MAX_SEGMENTS, IP length).
MAX_SEGMENTS = 64
MAX_BYTES = 65000

# Errors that say "this socket or device does not segment": fall back for good.
_UNSUPPORTED = {errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EIO}


class DatagramBatchSender:
    """Sends datagram batches on one socket; learns once whether it segments."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.segmenting = sys.platform == "linux"
        # System calls made and datagrams sent (read by benchmarks and tests).
        self.calls = 0
        self.datagrams = 0
        # Datagrams the kernel refused for want of buffer room (UDP: lost, as on the wire).
        self.dropped = 0

    def send(self, datagrams: Sequence[bytes], addr: tuple[str, int]) -> None:
        count = len(datagrams)
        start = 0
        while start < count:
            end = self._run_end(datagrams, start) if self.segmenting else start + 1
            if end - start == 1:
                self._sendto(datagrams[start], addr)
            elif not self._send_segmented(datagrams[start:end], addr):
                for datagram in datagrams[start:end]:
                    self._sendto(datagram, addr)
            start = end

    @staticmethod
    def _run_end(datagrams: Sequence[bytes], start: int) -> int:
        """The end of the longest batch from ``start`` that one segmented send can carry:
        equal sizes, then at most one shorter datagram."""
        size = len(datagrams[start])
        total = size
        end = start + 1
        count = len(datagrams)
        while end < count and end - start < MAX_SEGMENTS:
            length = len(datagrams[end])
            if length > size or total + length > MAX_BYTES:
                break
            total += length
            end += 1
            if length < size:
                break
        return end

    def _send_segmented(self, datagrams: Sequence[bytes], addr: tuple[str, int]) -> bool:
        segment = struct.pack("=H", len(datagrams[0]))
        try:
            self.sock.sendmsg([b"".join(datagrams)], [(SOL_UDP, UDP_SEGMENT, segment)], 0, addr)
        except BlockingIOError:
            self.dropped += len(datagrams)
            return True
        except OSError as error:
            if error.errno in _UNSUPPORTED:
                self.segmenting = False
                return False
            # An ICMP error of an earlier datagram, an unreachable network: lost, as on the wire.
            self.dropped += len(datagrams)
            return True
        self.calls += 1
        self.datagrams += len(datagrams)
        return True

    def _sendto(self, datagram: bytes, addr: tuple[str, int]) -> None:
        try:
            self.sock.sendto(datagram, addr)
        except OSError:
            # No buffer room, an ICMP error of an earlier datagram: lost, as on the wire.
            self.dropped += 1
            return
        self.calls += 1
        self.datagrams += 1
