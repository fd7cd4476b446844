"""The test session's own HOME, so nothing the suite runs writes to the real one, and the check that proves it.

`isolate()` runs when pytest imports tests/conftest.py, before any test module imports keras, IPython, Jupyter or
nbtrack and before any kernel, server, browser or child process starts: they all inherit the fake home through
os.environ. `snapshot()` before and after the session tells whether the real home changed anyway (a child started
with a hand-made environment and no HOME falls back to the password database's home, for instance).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Directories under HOME that tools find through HOME (or XDG) and would otherwise write to: pointed explicitly at
# the fake home too, because a user's own shell may set them to real places.
_HOME_DIRS = {
    "XDG_CONFIG_HOME": ".config",
    "XDG_CACHE_HOME": ".cache",
    "XDG_DATA_HOME": ".local/share",
    "XDG_STATE_HOME": ".local/state",
    "JUPYTER_CONFIG_DIR": ".jupyter",
    "JUPYTER_DATA_DIR": ".local/share/jupyter",
    "JUPYTER_RUNTIME_DIR": ".local/share/jupyter/runtime",
    "IPYTHONDIR": ".ipython",
    "KERAS_HOME": ".keras",
    "MPLCONFIGDIR": ".config/matplotlib",
}

# A user's NBTRACK_* settings (a spill or files directory, a store, capture switches) must not reach the tests;
# the fixtures set what a test needs.
_CLEARED_PREFIXES = ("NBTRACK_",)

# Extra paths (relative to the real HOME, os.pathsep-separated) a machine writes to by itself while tests run,
# e.g. an agent's or IDE's state directory. Empty by default: every change to the real home fails the session.
IGNORE_VARIABLE = "NBTRACK_TEST_HOME_IGNORE"


@dataclass(frozen=True)
class Home:
    real: Path
    fake: Path
    ignored: tuple[Path, ...]


def isolate(checkout: Path) -> Home:
    """Point HOME and the tools' own directories at a fresh temporary home; return both homes."""
    real = Path(os.environ.get("HOME") or os.path.expanduser("~")).absolute()
    fake = Path(tempfile.mkdtemp(prefix="nbtrack-test-home-")).resolve()
    ignored = _ignored(real, checkout)  # before the NBTRACK_* variables go
    for name in [n for n in os.environ if n.startswith(_CLEARED_PREFIXES)]:
        del os.environ[name]
    os.environ["HOME"] = str(fake)
    for variable, relative in _HOME_DIRS.items():
        (fake / relative).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ[variable] = str(fake / relative)
    runtime = fake / ".runtime"  # XDG_RUNTIME_DIR must be private to the user (Chromium, Jupyter check)
    runtime.mkdir(mode=0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    return Home(real=real, fake=fake, ignored=ignored)


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_LOCAL = "localhost,127.0.0.1,::1"


def go_offline() -> socket.socket:
    """Send every HTTP(S) request that is not to this machine to a port that refuses it at once, so no test
    depends on the network (keras' MNIST download in the notebooks fails fast and they fall back). Returns the
    bound socket that keeps the port refused: hold it for the session."""
    refusing = socket.socket()  # bound, never listening: every connection is refused
    refusing.bind(("127.0.0.1", 0))
    proxy = f"http://127.0.0.1:{refusing.getsockname()[1]}"
    for name in _PROXY_VARIABLES:
        os.environ[name] = proxy
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = _LOCAL  # the tests' own servers stay reachable
    return refusing


def _ignored(real: Path, checkout: Path) -> tuple[Path, ...]:
    """What the check skips under the real home, and why.

    - the checkout: pytest and hypothesis keep their caches in it (.pytest_cache, .hypothesis), and a CI clone
      usually lives under HOME;
    - the Python installation running the tests (a venv or pyenv under HOME): the interpreter writes bytecode
      caches (__pycache__) next to the modules it imports;
    - the temporary directory, when TMPDIR is under HOME: tmp_path and the fake home live there;
    - what NBTRACK_TEST_HOME_IGNORE names.
    """
    extra = [real / p for p in os.environ.get(IGNORE_VARIABLE, "").split(os.pathsep) if p.strip()]
    candidates = [checkout, Path(sys.prefix), Path(sys.base_prefix), Path(tempfile.gettempdir()), *extra]
    return tuple(sorted({Path(os.path.realpath(p)) for p in candidates} | {p.absolute() for p in candidates}))


Entry = tuple[str, int, int]  # kind, size, mtime in nanoseconds


def snapshot(home: Home) -> dict[str, Entry]:
    """Every name under the real home (symlinks not followed) with its kind, size and modification time."""
    found: dict[str, Entry] = {}
    pending = [str(home.real)]
    ignored = {str(p) for p in home.ignored}
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:  # unreadable or vanished: its absence or presence is seen from its parent's entry
            continue
        for entry in entries:
            if entry.path in ignored:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            kind = "dir" if stat.S_ISDIR(info.st_mode) else "link" if stat.S_ISLNK(info.st_mode) else "file"
            # A directory's size is the filesystem's business; its mtime moves when a name is added or removed.
            found[entry.path] = (kind, 0 if kind == "dir" else info.st_size, info.st_mtime_ns)
            if kind == "dir":
                pending.append(entry.path)
    return found


def changes(before: dict[str, Entry], after: dict[str, Entry], limit: int = 40) -> list[str]:
    """Human-readable lines for what was added, removed or modified between two snapshots."""
    lines = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if old is None:
            lines.append(f"added    {path} ({new[0]}, {new[1]} bytes)")
        elif new is None:
            lines.append(f"removed  {path}")
        else:
            lines.append(f"modified {path} (size {old[1]} -> {new[1]}, mtime {old[2]} -> {new[2]})")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


def remove(home: Home) -> None:
    shutil.rmtree(home.fake, ignore_errors=True)
