"""The suite's own HOME: what a test, a kernel or a child process writes under `~` lands in a temporary home, and
the end-of-session check sees any change to the real one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests import home_guard

from .conftest import HOME


def test_child_processes_and_tools_get_the_session_home(python, python_env):
    code = (
        "import json, os, pathlib\n"
        "from jupyter_core.paths import jupyter_config_dir, jupyter_data_dir, jupyter_runtime_dir\n"
        "from jupyter_client.kernelspec import KernelSpecManager\n"
        "from IPython.paths import get_ipython_dir\n"
        "print(json.dumps({'home': str(pathlib.Path.home()), 'nbtrack': os.path.expanduser('~/.nbtrack'),\n"
        "  'ipython': get_ipython_dir(), 'jupyter': [jupyter_config_dir(), jupyter_data_dir(), jupyter_runtime_dir()],\n"
        "  'keras': os.environ['KERAS_HOME'], 'cache': os.environ['XDG_CACHE_HOME'],\n"
        "  'kernels': sorted(KernelSpecManager().find_kernel_specs())}))\n"
    )
    done = subprocess.run([python, "-c", code], env=python_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    fake = str(HOME.fake)
    assert seen["home"] == fake and seen["nbtrack"] == f"{fake}/.nbtrack"
    assert seen["ipython"] == f"{fake}/.ipython" and seen["keras"] == f"{fake}/.keras"
    assert seen["jupyter"] == [
        f"{fake}/.jupyter",
        f"{fake}/.local/share/jupyter",
        f"{fake}/.local/share/jupyter/runtime",
    ]
    assert seen["cache"] == f"{fake}/.cache"
    assert "python3" in seen["kernels"]  # the environment's own kernelspec does not depend on HOME
    assert not any(
        name.startswith("NBTRACK_") for name in os.environ if name not in ("NBTRACK_STORE", "NBTRACK_SILENT")
    )


def test_the_check_sees_added_modified_and_removed_names_and_skips_ignored_ones(tmp_path):
    real = tmp_path / "home"
    (real / ".config").mkdir(parents=True)
    (real / ".config" / "tool.ini").write_text("a=1")
    (real / "old.txt").write_text("x")
    (real / "checkout").mkdir()
    home = home_guard.Home(real=real, fake=tmp_path / "fake", ignored=(real / "checkout",))
    before = home_guard.snapshot(home)
    assert sorted(Path(p).relative_to(real).as_posix() for p in before) == [
        ".config",
        ".config/tool.ini",
        "old.txt",
    ]

    (real / "checkout" / ".pytest_cache").mkdir()  # ignored
    assert home_guard.changes(before, home_guard.snapshot(home)) == []

    (real / ".config" / "tool.ini").write_text("a=22")
    os.utime(real / ".config" / "tool.ini", ns=(1, 1))
    (real / "old.txt").unlink()
    (real / ".keras").mkdir()
    (real / ".keras" / "keras.json").write_text("{}")
    lines = home_guard.changes(before, home_guard.snapshot(home))
    assert [line.split(" (")[0] for line in lines] == [
        f"modified {real}/.config/tool.ini",
        f"added    {real}/.keras",
        f"added    {real}/.keras/keras.json",
        f"removed  {real}/old.txt",
    ], lines
    assert lines[0].startswith(f"modified {real}/.config/tool.ini (size 3 -> 4, mtime ")


def test_the_network_is_refused_and_this_machine_is_not():
    import http.server
    import threading
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.URLError) as raised:
        urllib.request.urlopen(
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz", timeout=30
        )
    assert isinstance(raised.value.reason, ConnectionRefusedError)  # at once, by the session's proxy port
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/", timeout=30) as reply:
            assert reply.status == 200  # the tests' own servers are reached directly
    finally:
        server.server_close()
