"""Graceful stop on SIGTERM and SIGINT.

Kubernetes sends SIGTERM to a container's first process when a pod is evicted or deleted, then
SIGKILL after terminationGracePeriodSeconds. Workers turn the signal into a StopRequest that the
work loop checks, so unfinished work is handed back to the queue before the SIGKILL comes.
"""

import logging
import signal
import threading
import time

log = logging.getLogger(__name__)


class StopRequest:
    """A flag raised by SIGTERM/SIGINT, with the time it was raised."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""
        self.signum: int | None = None  # the signal that raised it; None when code did
        self.raised_at = 0.0

    def install(self) -> None:
        """Route SIGTERM and SIGINT to this request (main thread only, as Python requires)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self._event.is_set():
            self.signum = signum
        self.request(signal.Signals(signum).name)

    def request(self, reason: str) -> None:
        """Raise the flag from code, naming why: e.g. the connection that held the item was lost."""
        if not self._event.is_set():
            self.signal_name = reason
            self.raised_at = time.monotonic()
            self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on a stop; True when a stop was requested."""
        return self._event.wait(seconds)
