"""Sharing runs: bundles (export, import, sync between stores) and replicating a run elsewhere."""
