"""Reading runs back from a store: `StoredRun`, `RunList`, `runs(where=...)` and `get_run`."""
