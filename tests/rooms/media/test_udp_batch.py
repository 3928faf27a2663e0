"""A frame's datagrams in one segmented send, read back one by one on loopback."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator

import pytest

from rooms.media.udp_batch import DatagramBatchSender


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    yield sender, receiver
    sender.close()
    receiver.close()


def received(receiver: socket.socket, count: int) -> list[bytes]:
    return [receiver.recv(65535) for _ in range(count)]


def test_equal_datagrams_and_a_shorter_last_go_in_one_call(sockets: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = sockets
    batch = DatagramBatchSender(sender)
    datagrams = [os.urandom(1200) for _ in range(5)] + [os.urandom(333)]
    batch.send(datagrams, receiver.getsockname())
    assert received(receiver, 6) == datagrams
    assert batch.datagrams == 6
    if sys.platform == "linux":
        assert batch.segmenting and batch.calls == 1


def test_uneven_sizes_are_cut_into_runs_in_order(sockets: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = sockets
    batch = DatagramBatchSender(sender)
    # H.264: a short STAP-A (SPS, PPS), then FU-A fragments, then a short last one.
    datagrams = [os.urandom(40)] + [os.urandom(1300) for _ in range(3)] + [os.urandom(700), os.urandom(900)]
    batch.send(datagrams, receiver.getsockname())
    assert received(receiver, 6) == datagrams
    if sys.platform == "linux":
        # [40] [1300 1300 1300 700] [900]
        assert batch.calls == 3


def test_without_segmentation_each_datagram_is_one_sendto(sockets: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = sockets
    batch = DatagramBatchSender(sender)
    batch.segmenting = False
    datagrams = [os.urandom(1000) for _ in range(4)]
    batch.send(datagrams, receiver.getsockname())
    assert received(receiver, 4) == datagrams
    assert batch.calls == 4


def test_a_keyframe_beyond_one_send_is_split(sockets: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = sockets
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    batch = DatagramBatchSender(sender)
    datagrams = [os.urandom(1300) for _ in range(70)] + [os.urandom(10)]
    batch.send(datagrams, receiver.getsockname())
    assert received(receiver, 71) == datagrams
    if sys.platform == "linux":
        assert batch.calls == 2  # 65000 bytes at most per send: 50 + 21
