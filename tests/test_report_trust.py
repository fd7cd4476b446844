"""A notebook is untrusted input to a report (#14, items 1 and 8): it never chooses where nbtrack connects, and
its markdown and outputs cannot send the opened report anywhere. Fast: a fake PostgreSQL server on 127.0.0.1,
hand-built notebooks, the pure sanitiser."""

from __future__ import annotations

import re
import secrets
import socket
import struct
import threading

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbtrack
from nbtrack.cli import main
from nbtrack.errors import StoreError
from nbtrack.reports import report
from nbtrack.store import open_store

from .test_report import Document, check_document, code_cell, nbtrack_output, write_notebook

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


# -- item 8: notebook HTML cannot navigate the report --------------------------------------------------------
NAVIGATION = [
    "<meta http-equiv='refresh' content='0;url=https://evil.example/meta'>",
    "<META HTTP-EQUIV=Refresh CONTENT='1; URL=data:text/html,<b>x</b>'>",
    "<base href='https://evil.example/base/'>",
    "<form action='https://evil.example/form' method=post><input name=q value=1><button>go</button></form>",
    "<button formaction='https://evil.example/formaction'>b</button>",
    "<a href='javascript:alert(1)'>js</a>",
    "<a href=' JaVa\tScRiPt:alert(1)'>js2</a>",
    "<a href='data:text/html,<script>alert(1)</script>'>data</a>",
    "<a href='javascript&colon;alert(1)'>js3</a><a href='&#x6A;avascript:alert(1)'>js4</a>",
    "<a href='java&#x0A;script:alert(1)'>js5</a><a href='\x01javascript:alert(1)'>js6</a>",
    "<a href='vbscript:x'>vb</a>",
    "<a href='https://example.org/ok' target='_top' ping='https://evil.example/ping'>ok-link</a>",
    "<iframe srcdoc=\"<meta http-equiv=refresh content='0;url=https://evil.example/srcdoc'>\"></iframe>",
    "<object data='https://evil.example/object'></object><embed src='https://evil.example/embed'>",
    "<link rel=prefetch href='https://evil.example/link'>",
    "<img src='https://evil.example/img.png' alt='remote'>",
    "<svg><a xlink:href='javascript:alert(1)'><text>svg-link</text></a></svg>",
    "<svg><animate attributeName=href to='javascript:alert(1)'/><set attributeName=href to='https://evil.example/set'/></svg>",
    "<svg><style><meta http-equiv=refresh content='0;url=https://evil.example/svgstyle'></style></svg>",
    "<svg><use href='https://evil.example/use.svg#x'/><image href='https://evil.example/image.png'/></svg>",
    "<noscript><meta http-equiv=refresh content='0;url=https://evil.example/noscript'></noscript>",
    "<textarea><meta http-equiv=refresh content='0;url=https://evil.example/textarea'></textarea>",
    "<style>@import url(https://evil.example/import.css); body{display:none}</style>",
    "<div style='background:url(https://evil.example/bg.png)'>bg</div>",
    "<a href='https://example.org/cover' style='position:fixed;inset:0'>cover</a>",
    "<p onclick='location=1' onmouseover='x'>handlers</p>",
    "<!-- <meta http-equiv=refresh content='0;url=https://evil.example/comment'> -->",
]
META_OURS = {"charset", "Content-Security-Policy", "viewport", "referrer", "generator"}


@pytest.mark.parametrize("markup", NAVIGATION)
def test_sanitize_html_drops_what_could_navigate(markup):
    from nbtrack.render.sanitize import sanitize_html

    clean = sanitize_html(markup)
    low = clean.lower()
    assert "evil.example" not in low and "javascript" not in low and "vbscript" not in low, clean
    assert "data:text" not in low, clean
    parsed = Document(f"<div>{clean}</div>")
    assert [
        n for _, attrs in parsed.tags for n in attrs if n.startswith("on") or n in ("target", "ping")
    ] == []
    for tag in ("<meta", "<base", "<form", "<button", "<iframe", "<object", "<embed", "<link", "<style"):
        assert tag not in low, clean
    assert sanitize_html(clean) == clean  # what it keeps, it keeps as it is


@pytest.mark.parametrize(
    ("markup", "clean"),
    [
        ("<p>a <b>b</b> &amp; &lt;c&gt;</p>", "<p>a <b>b</b> &amp; &lt;c&gt;</p>"),
        (
            "<a href='https://example.org/x?a=1&b=2' target=_blank>x</a>",
            '<a href="https://example.org/x?a=1&amp;b=2" rel="noopener noreferrer">x</a>',
        ),
        (
            "<a href='#Title' class='anchor-link'>¶</a>",
            '<a href="#Title" class="anchor-link" rel="noopener noreferrer">¶</a>',
        ),
        ("<a href='other.ipynb'>rel</a>", '<a href="other.ipynb" rel="noopener noreferrer">rel</a>'),
        ("<img src='data:image/png;base64,iVBO' alt=p>", '<img src="data:image/png;base64,iVBO" alt="p">'),
        ("<input type=checkbox checked>done", '<input type="checkbox" checked="" disabled>done'),
        (
            "<table class=dataframe><tr><td colspan=2>1</td></tr></table>",
            '<table class="dataframe"><tr><td colspan="2">1</td></tr></table>',
        ),
        ("<span style='color: rgb(1,2,3)'>c</span>", '<span style="color: rgb(1,2,3)">c</span>'),
        (
            "<a href='https://example.org/' style='position:fixed;inset:0;z-index:9;transform:scale(9);"
            "float:left;margin:-900px;color:red;display:block'>cover</a>",
            '<a href="https://example.org/" style="color: red; display: block" rel="noopener noreferrer">cover</a>',
        ),
        ("<div style='position:absolute'>p</div>", "<div>p</div>"),
        (
            "<svg viewBox='0 0 4 4'><defs><clipPath id=c><rect width='4' height='4'/></clipPath></defs>"
            "<path d='M0 0L4 4' clip-path='url(#c)' fill=none /><use xlink:href='#c'/></svg>",
            '<svg viewbox="0 0 4 4"><defs><clippath id="c"><rect width="4" height="4"></rect></clippath></defs>'
            '<path d="M0 0L4 4" clip-path="url(#c)" fill="none"></path><use xlink:href="#c"></use></svg>',
        ),
        ("<div><p>unclosed <i>italic</div>after", "<div><p>unclosed <i>italic</i></p></div>after"),
        ("<textarea>gone</div>", ""),  # an unclosed dropped element ends at the latest with its parent
        ("<div><textarea>gone</div>kept", "<div></div>kept"),
        ("<custom-tag>text kept</custom-tag>", "text kept"),
    ],
)
def test_sanitize_html_keeps_what_a_notebook_shows(markup, clean):
    from nbtrack.render.sanitize import sanitize_html

    assert sanitize_html(markup) == clean


def test_a_notebook_report_neutralises_navigation_in_markdown_outputs_and_snapshots(tmp_path, store_dir):
    nbtrack.init(project="local").finish()
    hostile = "".join(NAVIGATION)
    path = write_notebook(
        tmp_path / "navigate.ipynb",
        [
            nbformat.v4.new_markdown_cell(
                f"# Notes\n\nmarkdown-text [docs](https://example.org/docs)\n\n{hostile}"
            ),
            code_cell(
                "display(HTML(...))",
                nbformat.v4.new_output(
                    "display_data",
                    data={
                        "text/html": f"<b>html-output</b>{hostile}",
                        "text/plain": "<HTML>",
                    },
                ),
                nbformat.v4.new_output(
                    "display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}
                ),
                nbformat.v4.new_output("display_data", data={"text/markdown": f"md-output {hostile}"}),
                nbformat.v4.new_output(
                    "display_data", data={"application/javascript": "location='https://evil.example/js'"}
                ),
            ),
            code_cell(
                "run", nbtrack_output({"view": "run", "run_id": "zzgone"}, f"<i>snapshot-text</i>{hostile}")
            ),
            nbformat.v4.new_raw_cell(f"raw-html {hostile}", metadata={"raw_mimetype": "text/html"}),
        ],
    )
    document = report(path).read_text(encoding="utf-8")
    links = tuple(u for u in Document(document).urls() if not u.startswith(("data:", "#")))
    # Links with a scheme are the harmless https ones; the rest are relative (a file beside the report).
    assert {u for u in links if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", u)} == {
        f"https://example.org/{p}" for p in ("docs", "ok", "cover")
    }
    doc = check_document(document, external=links)
    values = [v.lower() for _, attrs in doc.tags for v in attrs.values() if v]
    assert [v for v in values if "evil.example" in v or "javascript:" in v or "data:text" in v] == []
    # Not even as text, except in the raw cell, whose markup nbconvert shows as text.
    assert "evil.example" not in document[: document.index("raw-html")]
    metas = doc.named("meta")
    assert {next(k for k in ("charset", "http-equiv", "name") if k in m) for m in metas} == {
        "charset",
        "http-equiv",
        "name",
    }
    assert [m.get("http-equiv") for m in metas if "http-equiv" in m] == ["Content-Security-Policy"]
    for tag in (
        "base",
        "form",
        "button",
        "iframe",
        "object",
        "embed",
        "link",
        "textarea",
        "script",
        "noscript",
    ):
        assert doc.named(tag) == [], tag
    assert all("target" not in attrs and "ping" not in attrs for _, attrs in doc.tags)
    assert not [name for _, attrs in doc.tags for name in attrs if name.startswith("on")]
    assert [a for a in doc.named("a") if "position" in (a.get("style") or "")] == []
    hrefs = [a.get("href") for a in doc.named("a") if a.get("href") is not None]
    schemes = {m[1].lower() for h in hrefs for m in [re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", h)] if m}
    assert schemes == {"https"}, hrefs  # the rest are #fragments and relative links
    assert all(
        not h.startswith("data:") or "download" in a for a in doc.named("a") for h in [a.get("href") or ""]
    )
    for text in (
        "markdown-text",
        "html-output",
        "md-output",
        "snapshot-text",
        "ok-link",
        "cover",
        "handlers",
    ):
        assert text in document, text
    assert (
        '<img alt="No description has been provided for this image" src="data:image/png;base64,' in document
    )
    assert ".cell{margin:10px 0;contain:paint}" in document


def test_push_writes_only_to_the_store_the_user_chose_never_the_one_a_spill_file_names(
    tmp_path, store_dir, fake_postgres, capsys
):
    """A spill file is a file too: `nbtrack push` of one naming someone's server connects nowhere, and says
    which command would write it there."""
    from nbtrack.cli import main
    from nbtrack.run.spill import write_spill

    url = f"postgresql://u:in-the-file@127.0.0.1:{fake_postgres.port}/db"
    spill = write_spill(url, "abcd1234", {"loss": ([1], [1.0], [0.5])}, {"state": "finished"})
    assert main(["push", str(spill)]) == 1
    err = capsys.readouterr().err
    assert fake_postgres.connections == 0 and fake_postgres.passwords == []
    assert (
        f"holds a run of the store postgresql://u:***@127.0.0.1:{fake_postgres.port}/db, not of {store_dir}"
        in err
    )
    assert f"nbtrack --store 'postgresql://u:***@127.0.0.1:{fake_postgres.port}/db' push {spill}" in err
    assert "in-the-file" not in err
    assert spill.exists()  # nothing was consumed


def test_push_to_the_store_a_spill_file_was_written_for(store_dir, capsys):
    """The usual case is unchanged: the spill names the store the user uses ($NBTRACK_STORE here)."""
    import time

    import nbtrack
    from nbtrack.cli import main
    from nbtrack.run.spill import write_spill

    run = nbtrack.init(project="p")
    run.log({"loss": 1.0})
    run.finish()
    spill = write_spill(str(store_dir), run.id, {"loss": ([7], [time.time()], [0.5])}, {})
    assert main(["push", str(spill)]) == 0
    assert f"Wrote 1 points of run {run.id} to {store_dir}." in capsys.readouterr().out
    assert open_store(store_dir).history(run.id, "loss").value.tolist() == [1.0, 0.5]
