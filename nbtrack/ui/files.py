"""The Files pane (W&B's Files tab): the run's files with sizes, download buttons and text previews.

An anywidget view (js/files.js). Downloads and previews are asked for by the browser and answered here;
only files the run actually has are served.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from nbtrack.store.base import FileInfo
from nbtrack.ui import js_module

PREVIEW_BYTES = 100_000
TEXT_SUFFIXES = (
    ".txt",
    ".log",
    ".json",
    ".py",
    ".diff",
    ".md",
    ".yaml",
    ".yml",
    ".csv",
    ".cfg",
    ".toml",
    ".ini",
)
REFRESH_SECONDS = 2.0


def previewable(info: FileInfo) -> bool:
    return info.name.lower().endswith(TEXT_SUFFIXES)


def preview_text(head: bytes, size: int) -> str:
    """A file's first bytes as text for an inline preview: undecodable bytes replaced, NUL dropped."""
    text = head.decode("utf-8", errors="replace").replace("\x00", "")
    if size > len(head):
        text += f"\n… [preview cut at {len(head):,} bytes of {size:,}; download the file for all of it]"
    return text


class FilesView:
    """The anywidget view; made lazily so importing this module needs no anywidget (scripts never show it)."""

    def __new__(cls) -> Any:
        return _files_view_class()()


@functools.cache
def _files_view_class() -> type:
    import anywidget
    import traitlets

    class _FilesView(anywidget.AnyWidget):
        _esm = js_module("files.js")
        files = traitlets.List(traitlets.Dict()).tag(sync=True)
        preview = traitlets.Unicode("").tag(sync=True)

    return _FilesView


class FilesPane:
    def __init__(self, run: Any) -> None:
        self.run = run
        self.view = FilesView()
        self.view.on_msg(self._on_message)
        self.widget = self.view
        self._listing: list[FileInfo] = []
        self._last = 0.0

    def listing(self) -> list[FileInfo]:
        return self.run.store.list_files(self.run.id)

    def refresh(self, force: bool = False) -> int:
        now = time.monotonic()
        if not force and now - self._last < REFRESH_SECONDS:
            return 0
        self._last = now
        listing = self.listing()
        if listing == self._listing:
            return 0
        self._listing = listing
        self.view.files = [{"name": f.name, "size": f.size, "previewable": previewable(f)} for f in listing]
        from nbtrack.ui import accept_clicks_during_fit

        accept_clicks_during_fit(self.view)
        return 1

    # Requests arrive on another thread while fit runs (JupyterLab >= 4.4); they only read files and reply.
    def _on_message(self, widget: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        import os

        from nbtrack.store.base import open_run_file

        name = content.get("name") if isinstance(content, dict) else None
        known = {f.name for f in self.listing()}
        if not isinstance(name, str) or name not in known:
            return  # only the run's own files are served
        request = content.get("request")
        try:  # never through a symlink, even one swapped in since the listing
            with open_run_file(self.run.store.run_dir(self.run.id), name) as file:
                if request == "download":
                    self.view.send({"kind": "file", "name": name}, buffers=[file.read()])
                elif request == "preview":
                    self.view.preview = preview_text(
                        file.read(PREVIEW_BYTES), os.fstat(file.fileno()).st_size
                    )
        except FileNotFoundError as exc:
            if request == "preview":
                self.view.preview = f"Not shown: {exc}."
