"""The one progress line on stderr: refreshed in place on a terminal, a
plain line now and then when stderr is a file or a CI log."""

from __future__ import annotations

import shutil
import time
from typing import TextIO

# Off a terminal, a line this often is enough to see a run is alive.
PLAIN_EVERY_S = 5.0


class Progress:
    def __init__(self, stream: TextIO, *, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.terminal = stream.isatty()
        self._last_plain = 0.0
        self._shown = False

    def show(self, text: str, *, force: bool = False) -> None:
        """Refresh the line (off a terminal: print it if PLAIN_EVERY_S passed, or ``force``)."""
        if not self.enabled:
            return
        if self.terminal:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            self.stream.write("\r" + text[:width].ljust(width))
            self._shown = True
        elif force or time.monotonic() - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = time.monotonic()
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False
