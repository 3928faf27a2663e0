"""A published stream's audio level, from the RFC 6464 header extension.

Chromium and aiortc put the level of each audio packet in its RTP header
(``urn:ietf:params:rtp-hdrext:ssrc-audio-level``: -dBov, 0 the loudest, 127
silence), so the node knows who speaks without decoding anything. The
forwarding path calls ``AudioLevel.packet`` for every audio packet: one
table lookup and two additions. The node reads each stream's level once per
interval (``SPEAKERS_INTERVAL_MS``).

The voice activity bit of the extension is not used: aiortc always clears
it, so it would hide every aiortc publisher.
"""

from __future__ import annotations

import math

SILENCE_DBOV = 127

# The power (relative to full scale) of each -dBov value, so that a packet
# costs a lookup and the mean of an interval is a mean of powers, not of
# decibels: one loud packet among quiet ones counts as loud.
_POWER = tuple(10.0 ** (-dbov / 10) for dbov in range(SILENCE_DBOV + 1))


def dbov_of_power(power: float) -> int:
    """The -dBov value (0..127) of a mean power relative to full scale."""
    if power <= _POWER[SILENCE_DBOV]:
        return SILENCE_DBOV
    return min(SILENCE_DBOV, max(0, round(-10 * math.log10(power))))


class AudioLevel:
    """The level of one stream's audio over the intervals it is read at.

    A level rises at once and falls by at most ``release_db`` per reading
    (the node makes that 60 dB a second), as a level meter's needle does: a
    speaker's short pauses between words keep them speaking, and a new
    speaker outranks the last one as soon as they are louder than its
    fading level.
    """

    def __init__(self) -> None:
        self._power = 0.0
        self._packets = 0
        self._dbov = SILENCE_DBOV

    def packet(self, dbov: int) -> None:
        """An audio packet arrived with this -dBov level (0..127)."""
        self._power += _POWER[dbov & 0x7F]
        self._packets += 1

    def read(self, release_db: int) -> int:
        """The level (-dBov) since the last reading; silence when no packet came."""
        measured = dbov_of_power(self._power / self._packets) if self._packets else SILENCE_DBOV
        self._power = 0.0
        self._packets = 0
        self._dbov = min(measured, self._dbov + release_db, SILENCE_DBOV)
        return self._dbov
