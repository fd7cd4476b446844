"""Issue #9's fault catalogue, items 2, 5 and 7, each with real processes: nothing logged >= 1 s before a fault
is lost.

- A real SIGINT to a kernel mid-epoch, and the dashboard's Stop button clicked by a real comm message: the run
  ends interrupted within the epoch, its partial epoch's batches kept, the kernel alive.
- The disk holding the store fills up mid-run (a small tmpfs in a private mount namespace): training goes on,
  one warning, every point, output line and the run's end reach the store once space returns, or a spill file
  that `nbtrack push` writes later; the database passes `PRAGMA integrity_check`.
- Eight kernels write into one SQLite store while this process reads it continuously: no lock error, no lost
  point, and the reader saw the runs in progress.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nbtrack.store import open_store
from tests import test_faults
from tests.test_faults import _wait_for

ROOT = Path(__file__).resolve().parent.parent
kernel = test_faults.kernel  # fixture: a real IPython kernel on this test's store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- 2. KeyboardInterrupt and the Stop button mid-epoch ---------------------------------------------
STEPS_PER_EPOCH = 128
# An independent record of every batch end (epoch, batch, time), on disk at once; ~6 ms a batch.
WITNESSED_FIT = textwrap.dedent("""
    import time, keras
    from tests.keras_helpers import tiny_data, tiny_model

    class Witness(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.file = open({witness!r}, "a", buffering=1)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            self.file.write(f"{{self.epoch}} {{batch}} {{time.time()!r}}\\n")
            time.sleep(0.005)

    x, y = tiny_data(16 * {steps})
    tiny_model().fit(x, y, batch_size=16, epochs=50, verbose=0, callbacks=[Witness()])
""")


def _witnessed(path: Path) -> list[tuple[int, int, float]]:
    if not path.is_file():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(int(e), int(b), float(t)) for e, b, t in (row for row in rows if len(row) == 3)]


def _start_witnessed_fit(client, witness: Path) -> str:
    client.execute("%load_ext nbtrack")
    return client.execute(WITNESSED_FIT.format(witness=str(witness), steps=STEPS_PER_EPOCH))


def _wait_until_mid_epoch(witness: Path, epoch: int = 2) -> tuple[int, int, float]:
    """The batch just witnessed once training is well inside `epoch` (0-based), so the fault lands mid-epoch."""

    def mid_epoch():
        rows = _witnessed(witness)
        last = rows[-1] if rows else None
        # early in the epoch: the fault has ~70 batches (~0.4 s) to land before the epoch ends
        return last if last and last[0] >= epoch and 20 <= last[1] <= STEPS_PER_EPOCH // 2 else None

    return _wait_for(mid_epoch, 120, f"the fit to reach the middle of epoch {epoch + 1}")


def _reply_to(client, msg_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        reply = client.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.1))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


def _iopub_until_idle(client, parent: str, collected: list[dict], timeout: float = 60) -> list[dict]:
    """IOPub messages up to the kernel going idle after `parent` (some may be collected already)."""
    deadline = time.monotonic() + timeout
    while not any(
        m["msg_type"] == "status"
        and m["content"]["execution_state"] == "idle"
        and m["parent_header"].get("msg_id") == parent
        for m in collected
    ):
        try:
            collected.append(client.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.1)))
        except queue.Empty:
            raise AssertionError(f"the kernel did not go idle after {parent}") from None
    return collected


def _final_dashboard(messages: list[dict]) -> dict[str, str]:
    """The dashboard display's last bundle (its text and its static SVG snapshot)."""
    bundles = [
        m["content"]["data"]
        for m in messages
        if m["msg_type"] in ("display_data", "update_display_data")
        and "nbtrack run" in m["content"]["data"].get("text/plain", "")
    ]
    assert bundles, "the dashboard was never displayed"
    return bundles[-1]


def _assert_kernel_usable(manager, client) -> None:
    assert manager.is_alive()
    out = []
    reply = client.execute_interactive(
        "import nbtrack.run; print(6 * 7, nbtrack.run.current_run(), nbtrack.run.active_runs())",
        timeout=60,
        output_hook=lambda m: out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None,
    )
    assert reply["content"]["status"] == "ok"
    assert "".join(out).strip() == "42 None []"


def _batches(store, run_id: str) -> np.ndarray:
    history = store.history(run_id, "batch/loss")
    np.testing.assert_array_equal(history.step, np.arange(len(history)))  # gap-free, none twice
    return history.step


@pytest.mark.slow
def test_keyboard_interrupt_mid_epoch_keeps_the_partial_epoch_and_the_kernel(kernel, store_dir, tmp_path):
    manager, client = kernel
    witness = tmp_path / "batches.txt"
    cell = _start_witnessed_fit(client, witness)
    at_batch = _wait_until_mid_epoch(witness)
    interrupted_at = time.time()
    manager.interrupt_kernel()  # once, as a user presses Interrupt once: it must be enough
    reply = _reply_to(client, cell, timeout=120)  # a hang guard, not a timing: the reply comes within a batch
    messages = _iopub_until_idle(client, cell, [])
    replied_in = time.time() - interrupted_at
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply

    store = open_store(store_dir, create=False)
    (record,) = store.list_runs()
    assert record.state == "interrupted"
    assert [e.kind for e in store.events(record.id)] == ["fit", "interrupted"]
    steps = _batches(store, record.id)
    seen = _witnessed(witness)
    assert len(steps) % STEPS_PER_EPOCH != 0, "the partial epoch's batches are kept"
    assert len(steps) >= 2 * STEPS_PER_EPOCH + at_batch[1]  # up to the batch seen before the SIGINT
    # Every batch that ended before the interrupt is stored (the one it hit may not have reached our hook).
    assert len(seen) - 1 <= len(steps) <= len(seen), (len(seen), len(steps))
    due = [e * STEPS_PER_EPOCH + b for e, b, t in seen if t <= interrupted_at - 1.0]
    assert len(steps) > max(due)
    np.testing.assert_array_equal(store.history(record.id, "epoch").value, [0, 1])  # whole epochs only
    store.close()

    final = _final_dashboard(messages)
    assert "interrupted" in final["text/plain"] and record.name in final["text/plain"], final["text/plain"]
    assert "interrupted" in final["image/svg+xml"]
    _assert_kernel_usable(manager, client)
    print(
        f"interrupted at epoch 3 batch {at_batch[1]}; {len(steps)} batches kept; run ended "
        f"{record.ended - interrupted_at:.1f} s and the cell {replied_in:.1f} s after the SIGINT"
    )


def _comm_opens(messages: list[dict], model: str) -> list[dict]:
    return [
        m["content"]
        for m in messages
        if m["msg_type"] == "comm_open" and m["content"]["data"].get("state", {}).get("_model_name") == model
    ]


@pytest.mark.slow
def test_stop_button_clicked_mid_epoch_by_a_comm_message_ends_the_epoch_and_keeps_its_batches(
    kernel, store_dir, tmp_path
):
    manager, client = kernel
    witness = tmp_path / "batches.txt"
    cell = _start_witnessed_fit(client, witness)
    messages: list[dict] = []

    def stop_button():
        while True:
            try:
                messages.append(client.get_iopub_msg(timeout=0.05))
            except queue.Empty:
                break
        buttons = [
            c for c in _comm_opens(messages, "ButtonModel") if c["data"]["state"]["description"] == "Stop"
        ]
        return buttons[0]["comm_id"] if buttons else None

    button = _wait_for(stop_button, 120, "the dashboard's Stop button")
    # As JupyterLab >= 4.4 does: a subshell of its own, whose thread handles the click while `fit` runs.
    client.control_channel.send(client.session.msg("create_subshell_request", {}))
    subshell = client.get_control_msg(timeout=30)["content"]
    assert subshell["status"] == "ok", subshell
    at_batch = _wait_until_mid_epoch(witness)
    click = client.session.msg(
        "comm_msg", {"comm_id": button, "data": {"method": "custom", "content": {"event": "click"}}}
    )
    click["header"]["subshell_id"] = subshell["subshell_id"]
    client.shell_channel.send(click)
    reply = _reply_to(client, cell)
    _iopub_until_idle(client, cell, messages)
    assert reply["status"] == "ok", reply

    store = open_store(store_dir, create=False)
    (record,) = store.list_runs()
    assert record.state == "interrupted"
    events = store.events(record.id)
    assert [e.kind for e in events] == ["fit", "stopped"]
    assert events[1].message == "training stopped from the dashboard at epoch 3", events[1].message
    steps = _batches(store, record.id)
    seen = _witnessed(witness)
    assert len(steps) == len(seen), "every batch that ran is stored"
    assert {e for e, _, _ in seen[-(len(seen) - 2 * STEPS_PER_EPOCH) :]} == {2}, (
        "training ended within epoch 3"
    )
    assert at_batch[1] < len(steps) - 2 * STEPS_PER_EPOCH < STEPS_PER_EPOCH  # a partial epoch, kept
    # Keras ends the stopped epoch: its (partial) epoch metrics are logged as epoch 2.
    np.testing.assert_array_equal(store.history(record.id, "epoch").value, [0, 1, 2])
    store.close()

    final = _final_dashboard(messages)
    assert "interrupted" in final["text/plain"] and record.name in final["text/plain"], final["text/plain"]
    assert "interrupted" in final["image/svg+xml"]
    _assert_kernel_usable(manager, client)
    print(
        f"Stop clicked at epoch 3 batch {at_batch[1]}; ended after batch {len(steps) - 2 * STEPS_PER_EPOCH}"
    )


# -- 5. the disk holding the store fills up mid-run -------------------------------------------------
# The training script: logs a step every ~2 ms and prints a long line every 50 steps (output.log must grow
# too), until the test creates the `release` file; then `extra` more steps, finish.
DISK_FULL_CHILD = textwrap.dedent("""
    import os, sys, time
    import nbtrack

    store, release, extra = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = nbtrack.init(project="disk-full", store=store)
    print(run.id, flush=True)
    i, last = 0, None
    while last is None or i < last:
        run.log({"i": float(i), "loss": 1.0 / (i + 1), "wave": float(i % 17) - 8.0})
        if i % 50 == 0:
            print(f"step {i} " + "." * 300, flush=True)
        if last is None and i % 20 == 0 and os.path.exists(release):
            last = i + extra
        i += 1
        time.sleep(0.002)
    run.summary["steps"] = i
    run.finish()
    print("done", run.id, i, flush=True)
""")

# Runs inside a private mount namespace: mounts an 8 MiB tmpfs, runs the training script on a store there,
# fills the tmpfs mid-run, frees it (at once, or only after training ended), copies the store out.
DISK_FULL_DRIVER = textwrap.dedent("""
    import glob, json, os, shutil, sqlite3, subprocess, sys, threading, time

    a = json.loads(sys.argv[1])
    disk, out, spill = a["disk"], a["out"], a["spill"]
    store = os.path.join(disk, "store")
    release = os.path.join(out, "release")
    report = {"stderr": []}

    def say(what):
        report.setdefault("timeline", []).append((round(time.time(), 3), what))

    os.makedirs(disk, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", disk], check=True)
    sys.path.insert(0, a["root"])
    from nbtrack.store import open_store

    open_store(store).close()
    reader = sqlite3.connect(os.path.join(store, "nbtrack.db"), isolation_level=None)  # a notebook reading
    if a["free_pages"]:
        # A store that once held a big run, since deleted: SQLite reuses its free pages and its checkpointed
        # WAL (kept by this open reader), so database writes go on while the disk is full; files cannot grow.
        reader.execute("CREATE TABLE scratch (b BLOB)")
        reader.execute("INSERT INTO scratch VALUES (zeroblob(1500000))")
        reader.execute("DROP TABLE scratch")
        reader.execute("PRAGMA wal_checkpoint(PASSIVE)")
    env = dict(os.environ, NBTRACK_SPILL_DIR=spill, NBTRACK_FINAL_FLUSH_SECONDS=str(a["final_flush"]))
    child = subprocess.Popen(
        [sys.executable, "-c", a["child"], store, release, "1000"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    run_id = child.stdout.readline().strip()
    stdout = []

    def read_stderr():
        for line in child.stderr:
            report["stderr"].append((time.time(), line))

    readers = [
        threading.Thread(target=lambda: stdout.extend(child.stdout)), threading.Thread(target=read_stderr)
    ]
    for thread in readers:
        thread.start()

    def wait(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit(f"gave up waiting for {what}; child rc {child.poll()}; {report}")
            time.sleep(0.05)

    def points():
        rows = reader.execute(
            "SELECT count FROM metrics WHERE run_id = ? AND key = ?", (run_id, a["key"])
        ).fetchall()
        return rows[0][0] if rows else 0

    ready = os.path.join(store, "files", run_id, a["ready_file"])
    wait(lambda: points() >= 300 and os.path.exists(ready), 120, f"300 points and {ready}")
    filler = os.open(os.path.join(disk, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(filler, b"x" * 4096)
    except OSError as exc:
        say(f"full: {exc}")
    report["filled"] = time.time()
    stop_hog = threading.Event()

    def hog():  # whatever space is freed (a file cut short) is taken at once, as by another busy writer
        while not stop_hog.is_set():
            try:
                os.write(filler, b"x" * 4096)
            except OSError:
                time.sleep(0.0005)

    hogging = threading.Thread(target=hog)
    hogging.start()

    def free():
        stop_hog.set()
        hogging.join()
        os.close(filler)
        os.unlink(os.path.join(disk, "filler"))
        report["freed"] = time.time()
        say("freed")

    report["points_at_fill"] = points()
    report["files_when_full"] = {f: os.path.getsize(os.path.join(store, f)) for f in os.listdir(store)}
    wait(lambda: any("NbtrackWarning" in line for _, line in report["stderr"]), 60, "the child's warning")
    time.sleep(1.5)  # training goes on on a full disk
    if a["space_returns"]:
        free()
    open(release, "w").close()
    child.wait(timeout=180)
    report["ended"] = time.time()
    for thread in readers:
        thread.join(timeout=30)
    report["returncode"] = child.returncode
    report["stdout"] = stdout
    if not a["space_returns"]:
        report["files_at_end"] = {f: os.path.getsize(os.path.join(store, f)) for f in os.listdir(store)}
        free()
        report["spills"] = sorted(glob.glob(os.path.join(spill, "*.json")))
        pushes = [
            subprocess.run([sys.executable, "-m", "nbtrack", "--store", store, "push", path], env=env, capture_output=True, text=True)
            for path in report["spills"]
        ]
        report["push"] = [(p.returncode, p.stdout, p.stderr) for p in pushes]
    report["integrity"] = reader.execute("PRAGMA integrity_check").fetchall()
    reader.close()
    shutil.copytree(store, os.path.join(out, "store"))
    report["run_id"] = run_id
    print(json.dumps(report))
""")


def _private_tmpfs_prefix(tmp_path: Path) -> list[str]:
    """A command prefix that runs its command in a private mount namespace where it may mount a tmpfs."""
    probe = tmp_path / "probe"
    probe.mkdir()
    script = f"mount -t tmpfs -o size=1m tmpfs {probe} && umount {probe}"
    tried = []
    for prefix in (
        ["unshare", "--mount", "--propagation", "private"],  # root
        ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"],  # user namespaces
    ):
        if shutil.which(prefix[0]) is None:
            tried.append(f"{prefix[0]}: not installed")
            continue
        done = subprocess.run([*prefix, "sh", "-c", script], capture_output=True, text=True, timeout=30)
        if done.returncode == 0:
            return prefix
        tried.append(f"{' '.join(prefix)}: {done.stderr.strip()}")
    pytest.fail(
        "The disk-full test mounts a small tmpfs in a private mount namespace. It needs root, or unprivileged "
        "user namespaces (`unshare --user --map-root-user --mount` must work; on Ubuntu: "
        "`sysctl kernel.apparmor_restrict_unprivileged_userns=0`), and util-linux's `unshare`. Tried: "
        + "; ".join(tried)
    )


def _disk_full(tmp_path: Path, python: str, python_env: dict[str, str], **options) -> dict:
    prefix = _private_tmpfs_prefix(tmp_path)
    args = {
        "disk": str(tmp_path / "disk"),
        "out": str(tmp_path),
        "spill": str(tmp_path / "spill"),
        "root": str(ROOT),
        "child": DISK_FULL_CHILD,
        "final_flush": 60,
        "key": "i",
        "ready_file": "environment.json",
        **options,
    }
    done = subprocess.run(
        [*prefix, python, "-c", DISK_FULL_DRIVER, json.dumps(args)],
        env=python_env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert done.returncode == 0, f"driver failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["store"] = tmp_path / "store"
    return report


def _assert_every_point_and_line_is_there(report: dict, disk_store: str) -> None:
    assert report["returncode"] == 0, report
    (done,) = [line for line in report["stdout"] if line.startswith("done ")]
    _, run_id, steps = done.split()
    steps = int(steps)
    assert run_id == report["run_id"] and steps > report["points_at_fill"] + 1000
    assert {"nbtrack.db-wal", "nbtrack.db-shm"} <= set(report["files_when_full"])  # WAL mode, as always
    assert report["integrity"] == [["ok"]], report["integrity"]
    store = open_store(report["store"], create=False)
    try:
        record = store.get_run(run_id)
        assert record.state == "finished" and record.summary["steps"] == steps
        i = store.history(run_id, "i")
        np.testing.assert_array_equal(i.step, np.arange(steps))  # every step once: none lost, none twice
        np.testing.assert_array_equal(i.value, np.arange(steps, dtype=float))
        np.testing.assert_array_equal(store.history(run_id, "loss").value, 1.0 / (np.arange(steps) + 1))
        np.testing.assert_array_equal(store.history(run_id, "wave").value, np.arange(steps) % 17 - 8.0)
        # Training went on while the disk was full, and after.
        assert np.count_nonzero((i.time > report["filled"]) & (i.time < report["freed"])) > 100
        if "files_at_end" in report:  # the disk stayed full until the child ended
            assert report["freed"] > report["ended"]
        else:
            assert np.count_nonzero(i.time > report["freed"]) > 100
        log = (store.run_dir(run_id) / "output.log").read_text().splitlines()
        printed = [line.split()[1] for line in log if line.startswith("step ")]
        assert printed == [str(k) for k in range(0, steps, 50)], "output.log lost or repeated lines"
        _assert_run_files_whole(store.run_dir(run_id))
    finally:
        store.close()


def _assert_run_files_whole(directory: Path) -> None:
    """A file the full disk cut off is not left behind for readers (they would fail on it): whole or absent."""
    assert not list(directory.glob(".*partial*")), sorted(p.name for p in directory.iterdir())
    for path in directory.glob("*.json"):
        json.loads(path.read_text())


def _nbtrack_warnings(report: dict) -> list[str]:
    return [line for _, line in report["stderr"] if "NbtrackWarning" in line]


@pytest.mark.slow
@pytest.mark.parametrize("free_pages", [False, True], ids=["database-cannot-grow", "only-files-cannot-grow"])
def test_disk_full_mid_run_warns_once_and_writes_everything_when_space_returns(
    free_pages, tmp_path, python, python_env
):
    report = _disk_full(tmp_path, python, python_env, free_pages=free_pages, space_returns=True)
    print(report["timeline"], report["files_when_full"])
    stderr = "".join(line for _, line in report["stderr"])
    assert "Traceback" not in stderr, stderr
    (warning,) = _nbtrack_warnings(report)  # exactly one
    disk_store = str(tmp_path / "disk" / "store")
    assert disk_store in warning, warning
    if free_pages:  # the database has room in its free pages: the output log is what fails first
        assert "could not write the output of run" in warning and "No space left on device" in warning, (
            warning
        )
    else:
        assert "could not write run" in warning and "database or disk is full" in warning, warning
    assert "The disk is full: free some space there and nbtrack resumes writing" in warning, warning
    assert "Training goes on" in warning, warning
    _assert_every_point_and_line_is_there(report, disk_store)


@pytest.mark.slow
@pytest.mark.parametrize("free_pages", [False, True], ids=["database-cannot-grow", "only-files-cannot-grow"])
def test_disk_full_until_training_ends_spills_outside_the_disk_and_push_writes_it(
    free_pages, tmp_path, python, python_env
):
    report = _disk_full(
        tmp_path, python, python_env, free_pages=free_pages, space_returns=False, final_flush=2
    )
    print(report["timeline"], report["files_when_full"], report["files_at_end"], report["push"])
    stderr = "".join(line for _, line in report["stderr"])
    assert "Traceback" not in stderr, stderr
    warned = _nbtrack_warnings(report)
    disk_store = str(tmp_path / "disk" / "store")
    assert disk_store in warned[0] and "Training goes on" in warned[0], warned
    (spill,) = report["spills"]
    assert Path(spill).parent == tmp_path / "spill"  # outside the full disk
    (spilled,) = [w for w in warned if spill in w]
    assert f"nbtrack --store {disk_store} push {spill}" in spilled, spilled
    assert [code for code, _, _ in report["push"]] == [0], report["push"]
    _assert_every_point_and_line_is_there(report, disk_store)


# -- 7. eight kernels write into one SQLite store while a reader queries it ------------------------
KERNELS = 8
POINTS = 3000
KERNEL_LOGS = textwrap.dedent("""
    import time, nbtrack
    run = nbtrack.init(project="eight", name="kernel-{k}", config={{"kernel": {k}}})
    for i in range({points}):
        run.log({{"i": float(i), "x": i * 0.25 + {k}, "k": float({k})}})
        if i % 10 == 9:
            time.sleep(0.01)
    run.summary["logged"] = {points}
    run.finish()
    print("finished", run.id)
""")


@pytest.fixture
def kernels(python_env):
    from jupyter_client.manager import KernelManager

    managers = [KernelManager(kernel_name="python3") for _ in range(KERNELS)]
    clients = []
    try:
        for manager in managers:
            manager.start_kernel(env=dict(python_env), cwd=str(ROOT))
        for manager in managers:
            client = manager.client()
            client.start_channels()
            clients.append(client)
        for client in clients:
            client.wait_for_ready(timeout=120)
        yield managers, clients
    finally:
        for client in clients:
            client.stop_channels()
        for manager in managers:
            if manager.has_kernel:
                manager.shutdown_kernel(now=True)


@pytest.mark.slow
def test_eight_kernels_write_one_store_while_a_reader_queries_it(kernels, store_dir):
    import threading

    import nbtrack

    managers, clients = kernels
    outputs: list[list[str]] = [[] for _ in clients]
    replies: list[dict | None] = [None] * len(clients)

    def run_cell(k: int) -> None:
        def keep(message: dict) -> None:
            content = message["content"]
            if message["msg_type"] == "stream":
                outputs[k].append(content["text"])
            elif message["msg_type"] == "error":
                outputs[k].append("\n".join(content["traceback"]))
            elif message["msg_type"] in ("display_data", "execute_result"):
                outputs[k].append(content["data"].get("text/plain", ""))

        replies[k] = clients[k].execute_interactive(
            KERNEL_LOGS.format(k=k, points=POINTS), timeout=180, output_hook=keep
        )["content"]

    threads = [threading.Thread(target=run_cell, args=(k,), daemon=True) for k in range(len(clients))]
    started = time.monotonic()
    for thread in threads:
        thread.start()

    _wait_for(lambda: (store_dir / "nbtrack.db").is_file(), 120, "the kernels to create the store")
    reads = listings = cli_calls = 0
    most_running = 0
    partial_reads = 0  # histories read while their run was still logging
    while any(thread.is_alive() for thread in threads):
        listed = nbtrack.runs(project="eight", store=str(store_dir))
        listings += 1
        running = [r for r in listed if r.state == "running"]
        most_running = max(most_running, len(running))
        for stored in listed:
            if "i" not in stored.metrics():
                continue
            seen = stored.history("i")
            reads += 1
            # whatever a reader sees is a gap-free prefix of what was logged: no torn or reordered write
            np.testing.assert_array_equal(seen.value, np.arange(len(seen), dtype=float))
            partial_reads += 0 < len(seen) < POINTS
        if listings % 10 == 1:
            cli = subprocess.run(
                [sys.executable, "-m", "nbtrack", "--store", str(store_dir), "ls", "--project", "eight"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            cli_calls += 1
            assert cli.returncode == 0 and "locked" not in cli.stderr, cli.stderr
        if time.monotonic() - started > 240:  # a hang guard, not the thing tested
            raise AssertionError("the kernels did not finish in 240 s")
    elapsed = time.monotonic() - started

    for k, reply in enumerate(replies):
        text = "".join(outputs[k])
        assert reply is not None and reply["status"] == "ok", (k, reply, text)
        for bad in ("locked", "Traceback", "Error", "Warning", "busy"):
            assert bad not in text, f"kernel {k} printed {bad!r}:\n{text}"
    assert most_running >= 2 and partial_reads > 0, "the reader never saw runs in progress"

    finished = nbtrack.runs(project="eight", store=str(store_dir))
    assert sorted(r.name for r in finished) == [f"kernel-{k}" for k in range(KERNELS)]
    for stored in finished:
        k = stored.config["kernel"]
        assert stored.state == "finished" and stored.summary["logged"] == POINTS
        history = stored.history(["i", "x", "k"])
        np.testing.assert_array_equal(history["i"].step, np.arange(POINTS))
        np.testing.assert_array_equal(history["i"].value, np.arange(POINTS, dtype=float))
        np.testing.assert_array_equal(history["x"].value, np.arange(POINTS) * 0.25 + k)
        np.testing.assert_array_equal(history["k"].value, np.full(POINTS, float(k)))
    print(
        f"{KERNELS} kernels x {POINTS} log calls in {elapsed:.1f} s; reader: {listings} listings, {reads} "
        f"history reads ({partial_reads} of runs in progress, up to {most_running} running at once), "
        f"{cli_calls} `nbtrack ls`"
    )


# A Keras fit that keeps its best model: a save cut off by the full disk must not destroy the last good one.
KERAS_DISK_FULL_CHILD = textwrap.dedent("""
    import os, sys, time
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import nbtrack
    from nbtrack.keras import NbtrackCallback
    from tests.keras_helpers import tiny_data, tiny_model

    store, release, extra = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class Pace(keras.callbacks.Callback):
        last = None

        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.002)

        def on_epoch_end(self, epoch, logs=None):
            # A monitored value that improves every epoch, so a best-model save is due on the full disk too
            # (Keras hands the same logs to the callbacks after this one).
            logs["countdown"] = -float(epoch)
            print(f"epoch {epoch} " + "." * 300, flush=True)
            if self.last is None and os.path.exists(release):
                self.last = epoch + 3
            self.model.stop_training = self.last is not None and epoch >= self.last

    run = nbtrack.init(project="disk-full", store=store)
    print(run.id, flush=True)
    x, y = tiny_data(512)
    history = tiny_model(lr=0.003).fit(
        x, y, batch_size=16, epochs=1000, validation_split=0.25, verbose=0, callbacks=[Pace(), NbtrackCallback(monitor="countdown", mode="min")]
    )
    run.finish()
    print("done", run.id, len(history.history["loss"]), flush=True)
""")


@pytest.mark.slow
def test_disk_full_during_a_keras_fit_keeps_the_last_good_best_model_and_every_batch(
    tmp_path, python, python_env
):
    import keras

    from nbtrack.capture.model_graph import ModelGraph

    env = dict(python_env, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", NBTRACK_SYSTEM_INTERVAL="0")
    report = _disk_full(
        tmp_path,
        python,
        env,
        child=KERAS_DISK_FULL_CHILD,
        key="batch/loss",
        ready_file="model-best.keras",
        free_pages=False,
        space_returns=False,
        final_flush=2,
    )
    assert report["returncode"] == 0, report
    stderr = "".join(line for _, line in report["stderr"])
    assert "Traceback" not in stderr, stderr
    (done,) = [line for line in report["stdout"] if line.startswith("done ")]
    _, run_id, epochs = done.split()
    epochs, steps_per_epoch = int(epochs), 24
    warned = _nbtrack_warnings(report)
    failed_saves = [
        w for w in warned if "could not be saved to" in w and "a best model saved before is kept" in w
    ]
    assert len(failed_saves) == 1, (
        warned
    )  # a save was due on the full disk, failed, and was warned about once
    (spill,) = report["spills"]
    assert [code for code, _, _ in report["push"]] == [0], report["push"]
    assert report["integrity"] == [["ok"]]

    store = open_store(report["store"], create=False)
    try:
        record = store.get_run(run_id)
        assert record.state == "finished"
        batches = store.history(run_id, "batch/loss")
        np.testing.assert_array_equal(batches.step, np.arange(epochs * steps_per_epoch))
        np.testing.assert_array_equal(store.history(run_id, "epoch").value, np.arange(epochs))
        assert np.count_nonzero(batches.time > report["filled"]) > 3 * steps_per_epoch  # fit went on, full
        files = store.run_dir(run_id)
        _assert_run_files_whole(files)
        ModelGraph.from_json((files / "model.json").read_text())
        best = keras.saving.load_model(files / "model-best.keras")  # the last good save, whole
        assert best.count_params() > 0
        assert (files / "model-best.keras").stat().st_mtime < report["filled"]  # saved before the disk filled
        # the best value is tracked every epoch even when its model cannot be saved
        assert (
            record.summary["best_countdown"] == -float(epochs - 1)
            and record.summary["best_epoch"] == epochs - 1
        )
        log = (files / "output.log").read_text().splitlines()
        assert [line.split()[1] for line in log if line.startswith("epoch ")] == [
            str(e) for e in range(epochs)
        ]
    finally:
        store.close()
    print(f"Keras fit on a full disk: {epochs} epochs, warnings: {len(warned)}")
