"""What a run prints: stdout, stderr (Python warnings included) and the traceback that ends it.

`LineCollapser` turns a stream of writes into finished lines the way a terminal shows them: a carriage
return goes back to the start of the line (so the Keras progress bar leaves only its final state), a
backspace erases, ANSI escape codes and NUL bytes are dropped. `OutputCapture` tees sys.stdout and
sys.stderr into it; the output still reaches the cell as usual. Lines go to a bounded deque for the live
view and to a queue the run's writer appends to ``output.log``.
"""

from __future__ import annotations

import re
import sys
import threading
from collections import deque
from typing import Any, TextIO

ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
MAX_LINE = 10_000  # longer lines are cut (the rest is marked), in the view and in output.log
KEEP_LINES = 5_000


def clean(text: str) -> str:
    """Text with ANSI escape codes, NUL and other control characters (but tab) removed."""
    text = ANSI.sub("", text)
    return "".join(ch for ch in text if ch >= " " or ch == "\t")


class LineCollapser:
    """Feeds written text, returns the lines it completed (terminal semantics for \\r and \\b)."""

    _TOKENS = re.compile(r"([\r\n\b])")
    _CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

    def __init__(self) -> None:
        self._line = ""
        self._column = 0

    def feed(self, text: str) -> list[str]:
        if "\x1b" in text:
            text = ANSI.sub("", text)
        done: list[str] = []
        line, column = self._line, self._column
        for token in self._TOKENS.split(text):
            if token == "\n":
                done.append(self._finish(line))
                line, column = "", 0
            elif token == "\r":
                column = 0
            elif token == "\b":
                column = max(0, column - 1)
            elif token:
                if self._CONTROL.search(token):
                    token = self._CONTROL.sub("", token)
                if column >= len(line):
                    line = line + token if len(line) <= MAX_LINE else line
                else:
                    line = line[:column] + token + line[column + len(token) :]
                column += len(token)
        self._line, self._column = line, column
        return done

    def flush(self) -> list[str]:
        """The unfinished last line, if any (at the end of a run)."""
        if not self._line:
            return []
        done = [self._finish(self._line)]
        self._line, self._column = "", 0
        return done

    @staticmethod
    def _finish(line: str) -> str:
        line = line.rstrip()
        if len(line) > MAX_LINE:
            line = line[:MAX_LINE] + f" … [line cut at {MAX_LINE:,} characters]"
        return line


class RunLog:
    """The run's captured lines: the last `keep` for views, and a queue of everything for output.log."""

    def __init__(self, keep: int = KEEP_LINES) -> None:
        self.recent: deque[str] = deque(maxlen=keep)
        self.pending: deque[str] = deque()  # drained by the writer into output.log
        self.count = 0
        self._streams = {"stdout": LineCollapser(), "stderr": LineCollapser()}
        self._lock = threading.Lock()

    def write(self, stream: str, text: str) -> None:
        with self._lock:
            lines = self._streams[stream].feed(text)
            self._add(lines)

    def add_lines(self, lines: list[str]) -> None:
        with self._lock:
            self._add([clean(line) for line in lines])

    def _add(self, lines: list[str]) -> None:
        if lines:
            self.recent.extend(lines)
            self.pending.extend(lines)
            self.count += len(lines)

    def close(self) -> None:
        with self._lock:
            for collapser in self._streams.values():
                self._add(collapser.flush())

    def drain(self) -> list[str]:
        pending = self.pending
        return [pending.popleft() for _ in range(len(pending))]


class _Tee:
    """Writes go to the original stream first (the cell shows them as usual), then to the run's log."""

    def __init__(self, original: TextIO, log: RunLog, stream: str) -> None:
        self._original = original
        self._log = log
        self._stream = stream

    def write(self, text: str) -> int:
        written = self._original.write(text)
        try:
            self._log.write(self._stream, text)
        except Exception:
            pass  # capturing must never break printing
        return written

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, fileno... of the original
        return getattr(self._original, name)


class OutputCapture:
    """Tee sys.stdout and sys.stderr into a `RunLog` until `stop()`; restores them only if still ours."""

    def __init__(self, log: RunLog) -> None:
        self.log = log
        self._tees: dict[str, _Tee] = {}
        for name in ("stdout", "stderr"):
            original = getattr(sys, name)
            if original is None:
                continue
            tee = _Tee(original, log, name)
            self._tees[name] = tee
            setattr(sys, name, tee)

    def stop(self) -> None:
        for name, tee in self._tees.items():
            if getattr(sys, name) is tee:
                setattr(sys, name, tee._original)
        self._tees.clear()
        self.log.close()
