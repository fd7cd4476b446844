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
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nbtrack.store import open_store

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


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
    threading.Thread(target=lambda: stdout.extend(child.stdout), daemon=True).start()
    def read_stderr():
        for line in child.stderr:
            report["stderr"].append((time.time(), line))
    threading.Thread(target=read_stderr, daemon=True).start()

    def wait(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit(f"gave up waiting for {what}; child rc {child.poll()}; {report}")
            time.sleep(0.05)

    def points():
        rows = reader.execute("SELECT count FROM metrics WHERE run_id = ? AND key = 'i'", (run_id,)).fetchall()
        return rows[0][0] if rows else 0

    wait(lambda: points() >= 300, 60, "300 points in the store")
    filler = os.open(os.path.join(disk, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(filler, b"x" * 4096)
    except OSError as exc:
        say(f"full: {exc}")
    os.close(filler)
    report["filled"] = time.time()
    report["points_at_fill"] = points()
    report["files_when_full"] = {f: os.path.getsize(os.path.join(store, f)) for f in os.listdir(store)}
    wait(lambda: report["stderr"], 60, "the child's warning")
    time.sleep(1.5)  # training goes on on a full disk
    if a["space_returns"]:
        os.unlink(os.path.join(disk, "filler"))
        report["freed"] = time.time()
        say("freed")
    open(release, "w").close()
    child.wait(timeout=180)
    report["ended"] = time.time()
    time.sleep(0.2)  # the reader threads drain the pipes
    report["returncode"] = child.returncode
    report["stdout"] = stdout
    if not a["space_returns"]:
        report["files_at_end"] = {f: os.path.getsize(os.path.join(store, f)) for f in os.listdir(store)}
        os.unlink(os.path.join(disk, "filler"))
        report["freed"] = time.time()
        report["spills"] = sorted(glob.glob(os.path.join(spill, "*.json")))
        pushes = [
            subprocess.run([sys.executable, "-m", "nbtrack", "push", path], env=env, capture_output=True, text=True)
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
        assert np.count_nonzero(i.time > report["freed"]) > 100 or report["freed"] > report["ended"]
        log = (store.run_dir(run_id) / "output.log").read_text().splitlines()
        printed = [line.split()[1] for line in log if line.startswith("step ")]
        assert printed == [str(k) for k in range(0, steps, 50)], "output.log lost or repeated lines"
    finally:
        store.close()


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
    assert "No space left on device" in warning or "database or disk is full" in warning, warning
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
    assert f"nbtrack push {spill}" in spilled, spilled
    assert [code for code, _, _ in report["push"]] == [0], report["push"]
    _assert_every_point_and_line_is_there(report, disk_store)
