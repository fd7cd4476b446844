"""The bottom layer: plain values every other layer uses (JSON-safe values and keys, run names and states,
columnar series, secret masking) and the registry through which the upper layers lend views to the lower ones.
Imports nothing else from nbtrack but `nbtrack.errors`."""
