"""A notebook is untrusted input to a report (#14, items 1 and 8): it never chooses where nbtrack connects, and
its markdown and outputs cannot send the opened report anywhere. Fast: a fake PostgreSQL server on 127.0.0.1,
hand-built notebooks, the pure sanitiser."""

from __future__ import annotations

import secrets
import socket
import struct
import threading

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbtrack
from nbtrack.cli import main
from nbtrack.errors import StoreError
from nbtrack.reports import report
from nbtrack.store import open_store

from .test_report import check_document, code_cell, nbtrack_output, write_notebook

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104


class FakePostgres:
    """A socket on 127.0.0.1 that speaks enough of PostgreSQL's startup protocol to ask for a cleartext password
    (AuthenticationCleartextPassword: 'R', code 3) and records every connection and every password it receives."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.passwords: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-postgres", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            try:
                self._handle(conn)
            except OSError:
                pass
            finally:
                conn.close()

    @staticmethod
    def _read(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise OSError("client closed")
            data += chunk
        return data

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)  # a guard against a client that hangs, not a measurement
        while True:  # SSLRequest / GSSENCRequest first: refuse them, then the StartupMessage comes
            (length,) = struct.unpack("!i", self._read(conn, 4))
            body = self._read(conn, length - 4)
            if struct.unpack("!i", body[:4])[0] in (SSL_REQUEST, GSS_REQUEST):
                conn.sendall(b"N")
                continue
            break
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind = self._read(conn, 1)
        (length,) = struct.unpack("!i", self._read(conn, 4))
        payload = self._read(conn, length - 4)
        if kind == b"p":
            self.passwords.append(payload.rstrip(b"\0"))
        message = b"SFATAL\0C28P01\0Mfake server\0\0"
        conn.sendall(b"E" + struct.pack("!i", len(message) + 4) + message)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


@pytest.fixture
def fake_postgres(monkeypatch):
    server = FakePostgres()
    password = f"pgpass-{secrets.token_hex(8)}"
    monkeypatch.setenv("PGPASSWORD", password)
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "10")
    monkeypatch.setenv("PGSSLMODE", "disable")
    server.password = password  # type: ignore[attr-defined]
    yield server
    server.close()


def hostile_notebook(path, port: int, run_id: str):
    """A notebook whose nbtrack output says its run lives on the fake server."""
    url = f"postgresql://u@127.0.0.1:{port}/db"
    return write_notebook(
        path,
        [
            code_cell(
                "run = nbtrack.init()",
                nbtrack_output({"view": "run", "run_id": run_id, "store": url}, "<div>mailed snapshot</div>"),
            ),
            code_cell(
                "sweep",
                nbtrack_output(
                    {"view": "sweep", "sweep_id": "s1", "store": url}, "<div>sweep snapshot</div>"
                ),
            ),
        ],
    )


def test_the_fake_server_does_receive_a_password_from_a_direct_connection(fake_postgres):
    """The probe works: opening its URL as a store sends it $PGPASSWORD (so a report that did would be seen)."""
    with pytest.raises(StoreError):
        open_store(f"postgresql://u@127.0.0.1:{fake_postgres.port}/db", create=False)
    assert fake_postgres.connections >= 1
    assert fake_postgres.passwords[0] == fake_postgres.password.encode()


def test_a_notebook_report_never_opens_the_store_its_outputs_name(tmp_path, store_dir, fake_postgres):
    nbtrack.init(project="local", name="mine").finish()  # the user's own store, which the report reads
    path = hostile_notebook(tmp_path / "mailed.ipynb", fake_postgres.port, "zzremote1")
    document = report(path).read_text(encoding="utf-8")
    assert fake_postgres.connections == 0 and fake_postgres.passwords == []
    check_document(document)
    assert "mailed snapshot" in document and "sweep snapshot" in document
    hint = f"the notebook says it was stored in postgresql://u@127.0.0.1:{fake_postgres.port}/db"
    assert document.count(hint) == 4  # per output: the note at the top and the note beside the snapshot
    assert fake_postgres.password not in document


def test_the_report_command_and_magic_never_open_it_either(tmp_path, store_dir, fake_postgres, capsys):
    nbtrack.init(project="local").finish()
    path = hostile_notebook(tmp_path / "mailed.ipynb", fake_postgres.port, "zzremote2")
    assert main(["report", str(path), "-o", str(tmp_path / "cli.html")]) == 0
    shell = InteractiveShell.instance()
    try:
        shell.run_cell("%load_ext nbtrack")
        result = shell.run_cell(f"%nbtrack report {path} -o {tmp_path / 'magic.html'}")
        assert result.success, result.error_in_exec
        shell.run_cell("%unload_ext nbtrack")
    finally:
        InteractiveShell.clear_instance()
    assert "nbtrack: wrote" in capsys.readouterr().out
    assert fake_postgres.connections == 0
    for name in ("cli.html", "magic.html"):
        assert "mailed snapshot" in (tmp_path / name).read_text(encoding="utf-8")


def test_the_store_hint_is_masked_and_escaped(tmp_path, store_dir):
    nbtrack.init(project="local").finish()
    leaked = f"pw-{secrets.token_hex(6)}"
    path = write_notebook(
        tmp_path / "hint.ipynb",
        [
            code_cell(
                "x",
                nbtrack_output(
                    {"view": "run", "run_id": "zzz", "store": f"postgresql://u:{leaked}@h/db?<b>x</b>"},
                    "<i>s</i>",
                ),
            )
        ],
    )
    document = report(path).read_text(encoding="utf-8")
    check_document(document)
    assert leaked not in document
    assert "postgresql://u:***@h/db?&lt;b&gt;x&lt;/b&gt;" in document
