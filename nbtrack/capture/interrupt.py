"""One Ctrl-C (or one press of the notebook's Interrupt button) always stops a `fit`.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT's handler runs. When that is
inside a finalizer (`__del__`, a weakref callback: TensorFlow and Keras run many during training), CPython prints
"Exception ignored in ..." and drops the exception, and training goes on as if nothing was pressed. While a fit
runs, `InterruptWatch` wraps the SIGINT handler: it calls the previous handler as before and remembers that the
signal came; the callback's next batch or epoch hook calls `check()`, which raises KeyboardInterrupt if training is
still going, so a swallowed interrupt is raised again where it cannot be lost.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class InterruptWatch:
    """Remembers a SIGINT that arrived between `start()` and `stop()` until `check()` raises it."""

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None

    def start(self) -> None:
        """Wrap the current SIGINT handler (main thread only, and only a Python handler: SIG_IGN stays ignored)."""
        self.pending = False
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread, and SIGINT interrupts only it
        previous = signal.getsignal(signal.SIGINT)
        if previous == self._handle or not callable(previous):
            return
        self._previous = previous
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.stop()  # one signal is all it keeps: a second press goes straight to the previous handler
        self.pending = True
        self._previous(signum, frame)  # usually raises KeyboardInterrupt, which a finalizer may swallow

    def check(self) -> None:
        """Raise the KeyboardInterrupt that a finalizer swallowed, if a SIGINT came since the last check."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def stop(self) -> None:
        """Put the previous handler back (unless another one replaced ours since) and forget any pending signal."""
        self.pending = False
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) == self._handle
        ):
            signal.signal(signal.SIGINT, self._previous)
