"""Run reports (#6): the pure renderers, whole documents (CSP, no script, no request), hostile names, notebook
reports from hand-built notebooks, bad input, the `nbtrack report` command and `%nbtrack report` in a real
IPython shell. Fast: no kernel, no browser."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbtrack
from nbtrack.cli import main
from nbtrack.read.records import get_run
from nbtrack.reports import report
from nbtrack.reports.sections import (
    ReportError,
    comparison_report,
    comparison_section,
    model_html,
    run_report,
    run_section,
)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
URL_ATTRIBUTES = {
    "src",
    "href",
    "xlink:href",
    "srcset",
    "action",
    "formaction",
    "poster",
    "background",
    "data",
}

SCRIPT = "<script>window.pwned=1</script>"
CLOSE_SVG = "</svg><script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
ANSI = "\x1b[31m"
NUL = "\x00"
RTL = "\u202e"
HOSTILE = f"h{SCRIPT}{CLOSE_SVG}{IMG}{JS_URL}{ANSI}red{NUL}nul{RTL}rtl"


# -- helpers ---------------------------------------------------------------------------------------------
class Document(HTMLParser):
    """Parses a report; records nesting errors, every tag with its attributes, and the CSS it holds."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, int]] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.css: list[str] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"never closed: {self.stack}")

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        style = dict(attrs).get("style")
        if style:
            self.css.append(style)
        if tag not in VOID:
            self.stack.append((tag, self.getpos()[0]))

    def handle_startendtag(self, tag, attrs):  # <path .../> in SVG
        self.tags.append((tag, dict(attrs)))
        style = dict(attrs).get("style")
        if style:
            self.css.append(style)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"</{tag}> at line {self.getpos()[0]} closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] == "style":
            self.css.append(data)

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def urls(self) -> list[str]:
        return [
            value or "" for _, attrs in self.tags for name, value in attrs.items() if name in URL_ATTRIBUTES
        ]


def check_document(text: str, *, external: tuple[str, ...] = ()) -> Document:
    """Assert what every report must be: well-formed, one strict CSP, no script, no request anywhere."""
    doc = Document(text)
    assert not doc.errors, doc.errors[:5]
    policies = [
        a for a in doc.named("meta") if (a.get("http-equiv") or "").lower() == "content-security-policy"
    ]
    assert len(policies) == 1, policies
    directives = {d.split()[0]: d.split()[1:] for d in (policies[0]["content"] or "").split(";") if d.strip()}
    assert directives["default-src"] == ["'none'"]
    for name in ("script-src", "script-src-elem", "script-src-attr", "default-src"):
        assert "'unsafe-inline'" not in directives.get(name, []), directives
    assert directives.get("img-src", ["data:"]) == ["data:"]
    assert not any("http" in v or "*" in v for values in directives.values() for v in values), directives
    for tag in ("script", "link", "iframe", "object", "embed", "frame", "base", "form", "applet"):
        assert not doc.named(tag), f"<{tag}> in the report: {doc.named(tag)[:2]}"
    handlers = [(tag, name) for tag, attrs in doc.tags for name in attrs if name.startswith("on")]
    assert not handlers, handlers
    outside = [u for u in doc.urls() if not u.startswith(("data:", "#"))]
    assert sorted(outside) == sorted(external), outside
    css = "\n".join(doc.css)
    assert "@import" not in css.lower()
    assert not re.search(r"url\(\s*['\"]?(?!data:)", css, re.IGNORECASE), re.findall(r"url\([^)]*\)", css)
    assert "expression(" not in css.lower()
    assert any(a.get("name") == "viewport" for a in doc.named("meta"))
    assert "@media print" in css
    return doc


def svg_fragments(text: str) -> list[ET.Element]:
    """Every inline <svg>...</svg>, parsed as XML (fails the test if one is not well-formed)."""
    fragments = re.findall(r"<svg\b.*?</svg>", text, re.DOTALL)
    parsed = []
    for fragment in fragments:
        try:
            parsed.append(ET.fromstring(fragment))
        except ET.ParseError as exc:
            raise AssertionError(f"SVG is not well-formed XML ({exc}): {fragment[:300]!r}") from None
    return parsed


SVG_NS = "{http://www.w3.org/2000/svg}"


def svg_paths(svg: ET.Element) -> list[str]:
    return [p.get("d") or "" for p in svg.iter(f"{SVG_NS}path")] + [
        p.get("d") or "" for p in svg.iter("path")
    ]


def svg_texts(svg: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in [*svg.iter(f"{SVG_NS}text"), *svg.iter("text")]]


def assert_hostile_escaped(text: str) -> None:
    """The payloads appear as text only: no script, no handler, no javascript: link, no raw controls."""
    lowered = text.lower()
    assert "<script" not in lowered
    assert "window.pwned=1</script>" not in lowered
    assert "<img" not in lowered
    assert not re.search(r"<[^>]*\sonerror\s*=", lowered)
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", lowered)
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;/svg&gt;&lt;script&gt;" in text
    for svg in svg_fragments(text):
        assert svg.tag in ("svg", f"{SVG_NS}svg")


def _train(
    name: str,
    lr: float,
    *,
    project: str = "rep",
    opt: str = "adam",
    epochs: int = 4,
    tags: tuple[str, ...] = (),
    notes: str | None = None,
) -> nbtrack.Run:
    run = nbtrack.init(
        project=project,
        name=name,
        config={"lr": lr, "opt": opt, "layers": [64, 32]},
        tags=list(tags),
        notes=notes,
    )
    for epoch in range(epochs):
        run.log({"batch/loss": 1.0 / (epoch + 2)})
        run.log({"loss": 1.0 / (epoch + 1), "val_loss": lr * 10 / (epoch + 1), "accuracy": 0.5 + epoch / 10})
    run.finish()
    return run


@pytest.fixture(autouse=True)
def _no_system_sampler(monkeypatch):
    monkeypatch.setenv("NBTRACK_SYSTEM_INTERVAL", "0")


@pytest.fixture
def full_run(tmp_path):
    """A real finished run with config, summary, tags, notes, printed output, a saved file and an event."""
    extra = tmp_path / "weights-notes.txt"
    extra.write_text("weights go here\n")
    run = nbtrack.init(
        project="vision",
        name="alpha-run",
        config={"lr": 0.003, "optimizer": {"name": "adamw"}, "batch_size": 32},
        tags=["baseline", "cnn"],
        notes="first try with dropout",
    )
    print("epoch 1 starting")
    for step in range(6):
        run.log({"loss": 1.0 / (step + 1), "val_loss": 1.5 / (step + 1), "accuracy": step / 6})
    print("training done: final-line-marker")
    run.save(extra)
    run.event("early_stopping", "patience ran out", epoch=5)
    run.summary["test_accuracy"] = 0.8765
    run.finish()
    return get_run(run.id)


@pytest.fixture
def three_runs():
    return [
        _train("low-lr", 0.001, tags=("baseline",)),
        _train("mid-lr", 0.01, opt="sgd"),
        _train("high-lr", 0.1),
    ]


# -- 1. the pure renderers ---------------------------------------------------------------------------------
def test_run_section_shows_overview_charts_files_and_logs(full_run):
    html = run_section(full_run)
    assert "alpha-run" in html and "finished" in html and full_run.id in html and "vision" in html
    for text in ("config.lr", "0.003", "config.optimizer.name", "adamw", "config.batch_size", "32"):
        assert text in html, text
    assert "test_accuracy" in html and "0.8765" in html
    assert "baseline, cnn" in html and "first try with dropout" in html
    # the metric charts: one panel per family, each with a drawn line
    charts = svg_fragments(html)
    assert charts, "no SVG chart in the run section"
    titles = [t for svg in charts for t in svg_texts(svg)]
    assert "loss" in titles and "accuracy" in titles
    paths = [d for svg in charts for d in svg_paths(svg)]
    drawn = [d for d in paths if re.fullmatch(r"M[\d.]+,[\d.]+(L[\d.]+,[\d.]+)+", d)]
    assert len(drawn) >= 3, paths  # loss, val_loss, accuracy
    # the Files tab lists the saved file; the Logs tab shows the tail and attaches the whole log
    assert "weights-notes.txt" in html and "output.log" in html
    assert "epoch 1 starting" in html and "training done: final-line-marker" in html
    link = re.search(r"href='data:text/plain;charset=utf-8;base64,([A-Za-z0-9+/=]+)'", html)
    assert link, "the log is not attached"
    assert base64.b64decode(link.group(1)) == full_run.file("output.log").read_bytes()
    assert b"final-line-marker" in base64.b64decode(link.group(1))
    for tab in ("Overview", "Charts", "System", "Model", "Logs", "Files"):
        assert f">{tab}</label>" in html, tab


def test_run_section_without_heading_and_run_report_title(full_run):
    assert "<h2>alpha-run" not in run_section(full_run, heading=False)
    document = run_report(full_run)
    assert "<title>alpha-run · nbtrack run report</title>" in document
    assert document.count("<h2>alpha-run") == 1


def test_model_html_says_when_no_model_was_recorded(full_run):
    html = model_html(full_run)
    assert "No model recorded" in html and "<svg" not in html


def test_run_without_output_or_metrics_says_so():
    run = nbtrack.init(project="quiet", name="silent-run")
    run.finish()
    html = run_section(get_run(run.id))
    assert "No metrics logged." in html
    assert "No config." in html


def test_comparison_section_has_table_overlay_parallel_and_diff(three_runs):
    runs = [get_run(r.id) for r in three_runs]
    html = comparison_section(runs)
    for name in ("low-lr", "mid-lr", "high-lr"):
        assert name in html
    for tab in ("Runs", "Charts", "Parallel coordinates", "Config diff"):
        assert f">{tab}</label>" in html, tab
    svgs = svg_fragments(html)
    assert len(svgs) >= 2, "expected overlay charts and parallel coordinates"
    drawn = [d for svg in svgs for d in svg_paths(svg) if d.startswith("M") and "L" in d]
    assert len(drawn) >= 3 * 2  # at least two metrics overlaid for three runs
    assert "Coloured by" in html  # the parallel coordinates' colour key
    # config diff: the first run against each other one, lr and opt side by side
    diff = html[html.index(">Config diff</h2>") :]
    assert diff.count("<table class='nbtrack-diff'") == 2
    assert ">config.lr<" in diff and ">config.opt<" in diff
    assert "&#39;adam&#39;" in diff and "&#39;sgd&#39;" in diff
    assert ">layers<" not in diff and "config.layers" not in diff  # equal everywhere: not a difference
    assert comparison_section([]) == "<p class='meta'>No runs to compare.</p>"


def test_comparison_of_one_run_has_nothing_to_diff(three_runs):
    html = comparison_section([get_run(three_runs[0].id)])
    assert "One run: nothing to compare it with." in html
    assert "No config key differs between these runs." in html


# -- 2. whole documents --------------------------------------------------------------------------------
def test_run_report_is_a_self_contained_document(full_run):
    check_document(run_report(full_run))


def test_comparison_report_is_a_self_contained_document(three_runs):
    runs = [get_run(r.id) for r in three_runs]
    document = comparison_report(runs)
    check_document(document)
    assert "<h1>Comparison of 3 runs</h1>" in document
    assert "low-lr, mid-lr, high-lr" in document


# -- 4. notebook reports -------------------------------------------------------------------------------
def nbtrack_output(meta: dict, snapshot: str, plain: str = "Dashboard(...)") -> nbformat.NotebookNode:
    return nbformat.v4.new_output(
        "display_data",
        data={
            WIDGET_VIEW: {"model_id": "0123456789abcdef", "version_major": 2, "version_minor": 0},
            "text/html": snapshot,
            "text/plain": plain,
        },
        metadata={"nbtrack": meta},
    )


def write_notebook(path: Path, cells: list) -> Path:
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2, "version_minor": 0}
    }
    nbformat.write(notebook, path)
    return path


def code_cell(source: str, *outputs) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, outputs=list(outputs), execution_count=1)


def test_notebook_report_rerenders_runs_from_the_store(tmp_path, store_dir, full_run):
    path = write_notebook(
        tmp_path / "train.ipynb",
        [
            nbformat.v4.new_markdown_cell("# Training\n\nSee [the docs](https://example.com) for more."),
            code_cell(
                "import nbtrack\nrun = nbtrack.init()",
                nbtrack_output(
                    {"view": "run", "run_id": full_run.id, "store": str(store_dir)},
                    "<div>saved snapshot</div>",
                ),
            ),
            code_cell(
                "print('hi')", nbformat.v4.new_output("stream", name="stdout", text="hi-from-stream\n")
            ),
        ],
    )
    written = report(path)
    assert written == (tmp_path / "train.report.html").resolve()
    document = written.read_text(encoding="utf-8")
    check_document(document, external=("https://example.com",))
    assert "saved snapshot" not in document
    assert "<h2>alpha-run" in document and "test_accuracy" in document
    assert any(d.startswith("M") for svg in svg_fragments(document) for d in svg_paths(svg))
    text = re.sub(r"<[^>]+>", "", document)
    assert "hi-from-stream" in text and "run = nbtrack.init()" in text  # code and outputs, by nbconvert
    assert "<h1>train</h1>" in document
    assert not re.search(r"class=['\"]nbtrack-missing", document)
    assert "model_id" not in document  # no widget view left to resolve


def test_notebook_run_shown_twice_is_rendered_once_at_its_last_place(tmp_path, store_dir, full_run):
    meta = {"view": "run", "run_id": full_run.id, "store": str(store_dir)}
    path = write_notebook(
        tmp_path / "twice.ipynb",
        [
            code_cell("run = nbtrack.init()", nbtrack_output(meta, "<div>snapshot at init</div>")),
            nbformat.v4.new_markdown_cell("between-the-two"),
            code_cell("model.fit(x, y)", nbtrack_output(meta, "<div>snapshot at fit</div>")),
        ],
    )
    document = report(path, output=tmp_path / "out" / "twice.html").read_text(encoding="utf-8")
    check_document(document)
    assert document.count("<h2>alpha-run") == 1
    reference = document.index("Run alpha-run: its report is below, where it is shown last.")
    assert reference < document.index("between-the-two") < document.index("<h2>alpha-run")
    assert "snapshot at" not in document


def test_notebook_missing_run_shows_its_snapshot_with_a_note(tmp_path, store_dir, full_run):
    path = write_notebook(
        tmp_path / "gone.ipynb",
        [
            code_cell(
                "run = nbtrack.init()",
                nbtrack_output(
                    {"view": "run", "run_id": "zzgone00", "store": str(store_dir)},
                    "<div>saved snapshot of the gone run</div>",
                ),
            ),
            code_cell(
                "run2 = nbtrack.init()",
                nbtrack_output(
                    {"view": "run", "run_id": full_run.id, "store": str(store_dir)}, "<div>other snap</div>"
                ),
            ),
        ],
    )
    written = report(path)
    document = written.read_text(encoding="utf-8")
    check_document(document)
    assert "saved snapshot of the gone run" in document
    assert "showing the snapshot saved in the notebook" in document
    assert document.count("zzgone00") >= 2  # in the note at the top and beside the snapshot
    assert "<h2>alpha-run" in document and "other snap" not in document


def test_notebook_output_whose_store_is_gone_falls_back_too(tmp_path, full_run, monkeypatch):
    monkeypatch.setenv("NBTRACK_STORE", str(tmp_path / "no-such-store"))  # the store the report reads is gone
    path = write_notebook(
        tmp_path / "nostore.ipynb",
        [
            code_cell(
                "run = nbtrack.init()",
                nbtrack_output(
                    {"view": "run", "run_id": full_run.id, "store": str(tmp_path / "no-such-store")},
                    "<div>snapshot-without-store</div>",
                ),
            )
        ],
    )
    document = report(path).read_text(encoding="utf-8")
    check_document(document)
    assert "snapshot-without-store" in document and "nbtrack-missing" in document


def test_notebook_compare_output_renders_the_comparison(tmp_path, store_dir, three_runs):
    path = write_notebook(
        tmp_path / "cmp.ipynb",
        [
            code_cell(
                "nbtrack.runs().compare()",
                nbtrack_output(
                    {"view": "compare", "run_ids": [r.id for r in three_runs], "store": str(store_dir)},
                    "<div>saved compare snapshot</div>",
                ),
            )
        ],
    )
    document = report(path).read_text(encoding="utf-8")
    check_document(document)
    assert "saved compare snapshot" not in document
    for name in ("low-lr", "mid-lr", "high-lr"):
        assert name in document
    assert ">Parallel coordinates</label>" in document and ">Config diff</label>" in document
    assert len(svg_fragments(document)) >= 2


def test_notebook_compare_with_a_missing_run_falls_back(tmp_path, store_dir, three_runs):
    path = write_notebook(
        tmp_path / "cmp-gone.ipynb",
        [
            code_cell(
                "compare",
                nbtrack_output(
                    {"view": "compare", "run_ids": [three_runs[0].id, "zzgone11"], "store": str(store_dir)},
                    "<div>old compare snapshot</div>",
                ),
            )
        ],
    )
    document = report(path).read_text(encoding="utf-8")
    check_document(document)
    assert "old compare snapshot" in document and "zzgone11" in document


def test_plain_widget_outputs_fall_back_to_their_html(tmp_path):
    widget = nbformat.v4.new_output(
        "display_data",
        data={
            WIDGET_VIEW: {"model_id": "feedbeef", "version_major": 2, "version_minor": 0},
            "text/html": "<div>plain widget fallback</div>",
            "text/plain": "IntSlider(value=3)",
        },
    )
    text_only = nbformat.v4.new_output(
        "display_data",
        data={
            WIDGET_VIEW: {"model_id": "cafe", "version_major": 2, "version_minor": 0},
            "text/plain": "VBox()",
        },
    )
    path = write_notebook(tmp_path / "widgets.ipynb", [code_cell("slider", widget, text_only)])
    document = report(path).read_text(encoding="utf-8")
    check_document(document)
    assert "plain widget fallback" in document and "VBox()" in document
    assert "model_id" not in document and "feedbeef" not in document


# -- 3. hostile names ------------------------------------------------------------------------------------
@pytest.fixture
def hostile_runs(tmp_path):
    """Runs whose every user string (name, project, tags, config, metrics, summary, log, files) is hostile."""
    made = []
    for i in range(2):
        saved = tmp_path / f"file{i}.txt"
        saved.write_text("x")
        run = nbtrack.init(
            project=f"p{HOSTILE}",
            name=f"{HOSTILE}-{i}",
            config={f"k{HOSTILE}": f"v{HOSTILE}-{i}", "lr": 0.1 * (i + 1), "plain": i},
            tags=[f"t{HOSTILE}"],
            notes=f"n{HOSTILE}",
        )
        print(f"log line {HOSTILE}")
        for step in range(3):
            run.log({f"m{HOSTILE}": step * (i + 1), "loss": 1 / (step + 1 + i)})
        run.summary[f"s{HOSTILE}"] = f"sv{HOSTILE}"
        run.save(saved, name=f"f{IMG}{ANSI}{RTL}.txt")
        run.save(saved, name=f"dir{SCRIPT}")  # the '/' in the payload makes a subfolder
        run.finish()
        made.append(get_run(run.id))
    return made


def test_hostile_strings_are_text_in_the_run_report(hostile_runs):
    document = run_report(hostile_runs[0])
    check_document(document)
    assert_hostile_escaped(document)
    texts = [t for svg in svg_fragments(document) for t in svg_texts(svg)]
    assert any(t.startswith("mh<script>window.pwned=1</script></svg><script>") for t in texts), (
        texts
    )  # the metric, as text
    assert "f&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in document  # the file name
    assert "log line h&lt;script&gt;window.pwned=1" in document and "svh&lt;script&gt;" in document


def test_hostile_strings_are_text_in_the_comparison_report(hostile_runs):
    document = comparison_report(hostile_runs, title=f"title{HOSTILE}")
    check_document(document)
    assert_hostile_escaped(document)
    assert "<h1>titleh&lt;script&gt;window.pwned=1&lt;/script&gt;" in document


def test_hostile_strings_are_text_in_a_notebook_report(tmp_path, store_dir, hostile_runs):
    path = write_notebook(
        tmp_path / "hostile.ipynb",
        [
            code_cell(
                "run = nbtrack.init()",
                nbtrack_output(
                    {"view": "run", "run_id": hostile_runs[0].id, "store": str(store_dir)}, "<div>snap</div>"
                ),
            ),
            code_cell(
                "compare",
                nbtrack_output(
                    {"view": "compare", "run_ids": [r.id for r in hostile_runs], "store": str(store_dir)},
                    "<div>snap</div>",
                ),
            ),
        ],
    )
    document = report(path).read_text(encoding="utf-8")
    check_document(document)
    assert_hostile_escaped(document)


def test_run_report_holds_no_raw_control_characters(hostile_runs):
    """NUL and ANSI escapes from run strings are shown as U+FFFD, as `esc` promises."""
    document = run_report(hostile_runs[0])
    assert NUL not in document and "\x1b" not in document
    assert "\ufffd[31mred\ufffdnul" in document


def test_comparison_report_holds_no_raw_control_characters(hostile_runs):
    """The runs table and the config diff too: the whole report follows `esc`, not only its SVG."""
    document = comparison_report(hostile_runs)
    assert NUL not in document
    assert "\x1b" not in document


def test_missing_run_note_escapes_the_run_id(tmp_path, store_dir):
    store_dir.mkdir(parents=True, exist_ok=True)
    nbtrack.init(project="seed").finish()  # the store exists
    path = write_notebook(
        tmp_path / "gone-hostile.ipynb",
        [
            code_cell(
                "x", nbtrack_output({"view": "run", "run_id": HOSTILE, "store": str(store_dir)}, "<i>s</i>")
            )
        ],
    )
    document = report(path).read_text(encoding="utf-8")
    check_document(document)
    assert "<script" not in document.lower() and "<img" not in document.lower()


def test_the_report_embeds_no_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("MY_API_TOKEN", "supersecret123")
    monkeypatch.setenv("DATABASE_URL", "postgres://user:hunter2pass@db/x")
    run = nbtrack.init(project="sec", name="secret-run", config={"lr": 0.1})
    run.log({"loss": 1.0})
    run.finish()
    document = run_report(get_run(run.id))
    assert "supersecret123" not in document
    assert "hunter2pass" not in document
    written = report(run="secret-run", output=tmp_path / "sec.html")
    assert "supersecret123" not in written.read_text(encoding="utf-8")


# -- 5. bad input and the command --------------------------------------------------------------------------
def test_report_needs_exactly_one_target(tmp_path, full_run):
    with pytest.raises(
        ReportError, match=r"exactly one of: a notebook path, run=, runs= or where= \(got 0\)"
    ):
        report()
    with pytest.raises(ReportError, match=r"\(got 2\)"):
        report(tmp_path / "x.ipynb", run=full_run.id)
    with pytest.raises(ReportError, match=r"\(got 2\)"):
        report(runs=[full_run.id], where="config.lr > 0")
    assert issubclass(ReportError, nbtrack.NbtrackError)


def test_root_report_stays_the_function_once_its_module_is_imported(tmp_path, full_run):
    """`nbtrack.report(...)` is the root API; importing nbtrack.report (the CLI, the magic, the function's own
    first call all do) must not replace it with the module."""
    import nbtrack.reports as _module  # noqa: F401

    assert callable(nbtrack.report), type(nbtrack.report)
    written = nbtrack.report(run=full_run.id, output=tmp_path / "root.html")
    assert written.is_file()


def test_report_of_a_missing_notebook_names_it(tmp_path):
    missing = tmp_path / "nope.ipynb"
    with pytest.raises(ReportError, match="No notebook at .*nope.ipynb"):
        report(missing)
    assert not (tmp_path / "nope.report.html").exists()


def test_report_where_matching_nothing_and_empty_runs(full_run):
    with pytest.raises(ReportError, match=r"No runs match 'config.lr > 100'"):
        report(where="config.lr > 100")
    with pytest.raises(ReportError, match=r"runs= is empty"):
        report(runs=[])
    with pytest.raises(nbtrack.NbtrackError):
        report(run="no-such-run")


def test_report_run_and_runs_default_paths(tmp_path, monkeypatch, three_runs):
    monkeypatch.chdir(tmp_path)
    one = report(run=three_runs[0].name)
    assert one == (tmp_path / "low-lr.report.html").resolve()
    check_document(one.read_text(encoding="utf-8"))
    many = report(runs=[r.id for r in three_runs])
    assert many == (tmp_path / "comparison.report.html").resolve()
    assert "Comparison of 3 runs" in many.read_text(encoding="utf-8")
    chosen = report(runs=three_runs[1].name, output="single.html")  # one name, as a string
    assert "mid-lr" in chosen.read_text(encoding="utf-8")


def test_cli_report_without_target_exits_2(capsys):
    assert main(["report"]) == 2
    assert "report takes one of: a notebook path, --run RUN" in capsys.readouterr().err


def test_cli_report_with_two_targets_exits_2(capsys, full_run):
    assert main(["report", "--run", "latest", "--where", "config.lr > 0"]) == 2
    assert "report takes one of" in capsys.readouterr().err


def test_cli_report_where_syntax_error_exits_2_with_caret(capsys, full_run):
    assert main(["report", "--where", "config.lr <"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nbtrack: --where:") and "^" in err


def test_cli_report_execute_without_notebook_exits_2(capsys, full_run):
    assert main(["report", "--run", "latest", "--execute"]) == 2
    assert "--execute runs a notebook: give its path." in capsys.readouterr().err


def test_cli_report_of_a_missing_notebook_exits_1(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.ipynb")]) == 1
    assert "No notebook at" in capsys.readouterr().err


def test_cli_report_run_latest_writes_the_file(tmp_path, capsys, full_run):
    target = tmp_path / "sub" / "latest.html"
    assert main(["report", "--run", "latest", "-o", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"Wrote {target.resolve()} (" in out and "bytes)" in out
    document = target.read_text(encoding="utf-8")
    check_document(document)
    assert "<h2>alpha-run" in document


def test_cli_report_runs_and_where_write_comparisons(tmp_path, capsys, store_dir, three_runs):
    names = [r.name for r in three_runs[:2]]
    cmp = tmp_path / "cmp.html"
    assert main(["--store", str(store_dir), "report", "--runs", *names, "-o", str(cmp)]) == 0
    assert "Wrote" in capsys.readouterr().out
    document = cmp.read_text(encoding="utf-8")
    check_document(document)
    assert "Comparison of 2 runs" in document and "low-lr" in document and "mid-lr" in document
    assert "high-lr" not in document
    where = tmp_path / "where.html"
    assert main(["report", "--where", "config.lr >= 0.01", "--project", "rep", "-o", str(where)]) == 0
    assert "Wrote" in capsys.readouterr().out
    document = where.read_text(encoding="utf-8")
    check_document(document)
    assert "Runs where config.lr &gt;= 0.01" in document
    assert "mid-lr" in document and "high-lr" in document and "low-lr" not in document


def test_cli_report_notebook(tmp_path, capsys, store_dir, full_run):
    path = write_notebook(
        tmp_path / "nb.ipynb",
        [
            code_cell(
                "r", nbtrack_output({"view": "run", "run_id": full_run.id, "store": str(store_dir)}, "s")
            )
        ],
    )
    assert main(["report", str(path)]) == 0
    assert f"Wrote {(tmp_path / 'nb.report.html').resolve()}" in capsys.readouterr().out


# -- 6. the %nbtrack report magic ----------------------------------------------------------------------
@pytest.fixture
def shell(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("__vsc_ipynb_file__", raising=False)
    shell = InteractiveShell.instance()
    yield shell
    shell.run_cell("%unload_ext nbtrack")
    InteractiveShell.clear_instance()


@pytest.fixture
def saved_notebook(tmp_path, store_dir, full_run):
    return write_notebook(
        tmp_path / "session.ipynb",
        [
            nbformat.v4.new_markdown_cell("magic notebook"),
            code_cell(
                "run = nbtrack.init()",
                nbtrack_output({"view": "run", "run_id": full_run.id, "store": str(store_dir)}, "<b>s</b>"),
            ),
        ],
    )


def test_magic_report_finds_the_notebook_from_the_session(
    shell, monkeypatch, tmp_path, capsys, saved_notebook
):
    shell.run_cell("%load_ext nbtrack")
    monkeypatch.setenv("JPY_SESSION_NAME", str(saved_notebook))
    target = tmp_path / "r.html"
    result = shell.run_cell(f"%nbtrack report -o {target}")
    assert result.success, result.error_in_exec
    out = capsys.readouterr().out
    assert f"nbtrack: wrote {target.resolve()} (" in out and str(saved_notebook) in out
    document = target.read_text(encoding="utf-8")
    check_document(document)
    assert "magic notebook" in document and "<h2>alpha-run" in document


def test_magic_report_without_a_known_notebook_asks_for_the_path(shell, tmp_path, capsys):
    shell.run_cell("%load_ext nbtrack")
    result = shell.run_cell("%nbtrack report")
    assert result.success
    out = capsys.readouterr().out
    assert "cannot tell which notebook this kernel runs" in out
    assert "Pass its path: %nbtrack report path/to/notebook.ipynb" in out
    assert "Traceback" not in out
    assert not list(tmp_path.glob("*.report.html"))


def test_magic_report_with_a_session_that_is_not_a_file(shell, monkeypatch, capsys):
    shell.run_cell("%load_ext nbtrack")
    monkeypatch.setenv("JPY_SESSION_NAME", "Untitled-not-here.ipynb")
    shell.run_cell("%nbtrack report")
    out = capsys.readouterr().out
    assert "'Untitled-not-here.ipynb', which is not a file here" in out


def test_magic_report_with_a_path(shell, capsys, saved_notebook):
    shell.run_cell("%load_ext nbtrack")
    result = shell.run_cell(f"%nbtrack report {saved_notebook}")
    assert result.success, result.error_in_exec
    out = capsys.readouterr().out
    written = saved_notebook.with_suffix(".report.html")
    assert f"nbtrack: wrote {written.resolve()}" in out
    check_document(written.read_text(encoding="utf-8"))


def test_magic_report_bad_arguments(shell, capsys, saved_notebook):
    shell.run_cell("%load_ext nbtrack")
    shell.run_cell(f"%nbtrack report {saved_notebook} other.ipynb")
    assert "report takes one notebook path" in capsys.readouterr().out
    shell.run_cell(f"%nbtrack report {saved_notebook} -o")
    assert "-o needs a path" in capsys.readouterr().out


def test_comparison_report_size_is_bounded_as_runs_grow(tmp_path):
    from nbtrack.store import open_store
    from nbtrack.store.base import SeriesBatch, WriteBatch

    store = open_store(tmp_path / "many")
    ids = []
    for i in range(60):
        rid = f"r{i:03d}"
        store.create_run(
            run_id=rid,
            project="many",
            name=None,
            config={"lr": 0.001 * (i + 1)},
            tags=(),
            notes=None,
            created=1.7e9 + i,
            host="h",
            pid=0,
        )
        steps = list(range(5000))
        store.write_batch(
            WriteBatch(
                rid,
                series=[
                    SeriesBatch("loss", steps, [1.7e9 + s for s in steps], [1.0 / (s + 1) + i for s in steps])
                ],
                state="finished",
                ended=1.7e9 + 100,
            )
        )
        ids.append(rid)
    html = nbtrack.report(runs=ids, store=store, output=tmp_path / "many.html").read_text()
    assert html.count("<path") >= 60 and len(html.encode()) < 3_000_000


@pytest.mark.slow
def test_report_execute_runs_the_notebook_first(tmp_path, store_dir, monkeypatch):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Executed for the report"),
        nbformat.v4.new_code_cell(
            "import nbtrack\nrun = nbtrack.init(project='executed')\nfor i in range(20):\n    run.log({'loss': 1 / (i + 1)})\nrun.finish()\nprint('trained', run.name)"
        ),
    ]
    path = tmp_path / "fresh.ipynb"
    nbformat.write(nb, path)  # saved without outputs
    monkeypatch.delenv("NBTRACK_SILENT", raising=False)
    html = nbtrack.report(path, execute=True).read_text()
    (run,) = nbtrack.runs(project="executed")
    assert f"trained {run.name}" in html  # the output of a cell that ran for the report
