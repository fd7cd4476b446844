"""A pretend kernel for widget tests: widgets open recording comms, displays are captured.

The `notebook` fixture is registered in conftest.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import comm
import pytest
from comm.base_comm import BaseComm

import nbtrack.ui
import nbtrack.ui.dashboard as dashboard_module


@dataclass
class Message:
    time: float
    msg_type: str
    data: dict
    buffers: list = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(len(memoryview(b).cast("B")) for b in self.buffers or [])


class RecordingComm(BaseComm):
    log: list[Message] = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        RecordingComm.log.append(Message(time.monotonic(), msg_type, data or {}, list(buffers or [])))


class Handle:
    def __init__(self, bundle):
        self.bundles = [bundle]
        self.metadata: list = []

    def update(self, bundle, raw=False, metadata=None):
        self.bundles.append(bundle)
        self.metadata.append(metadata)


@pytest.fixture
def notebook(monkeypatch):
    """Pretend to be a kernel: widgets open recording comms and displays are captured."""
    RecordingComm.log = []
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(**kwargs))
    monkeypatch.setattr(dashboard_module, "in_notebook", lambda: True)
    monkeypatch.setattr(nbtrack.ui, "in_notebook", lambda: True)
    handles: list[Handle] = []

    def fake_display(bundle, raw=False, display_id=False, metadata=None):
        handles.append(Handle(bundle))
        handles[-1].metadata.append(metadata)
        return handles[-1]

    import IPython.display

    monkeypatch.setattr(IPython.display, "display", fake_display)
    return handles
