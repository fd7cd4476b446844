"""The Keras callback at its public path: ``from nbtrack.keras import NbtrackCallback`` (it lives in
`nbtrack.integrations.keras`, beside the other adapters)."""

from __future__ import annotations

from nbtrack.integrations.keras import NbtrackCallback

__all__ = ["NbtrackCallback"]
