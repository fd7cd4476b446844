"""Bundles at their public path: ``from nbtrack.bundle import export_runs, import_bundle, sync`` (they live in
`nbtrack.share.bundle`, beside replicate)."""

from __future__ import annotations

from nbtrack.share.bundle import BundleError, ImportResult, SyncResult, export_runs, import_bundle, sync

__all__ = ["BundleError", "ImportResult", "SyncResult", "export_runs", "import_bundle", "sync"]
