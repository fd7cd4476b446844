"""nbtrack's version (the build reads it from here; `nbtrack.__version__` shows it)."""

__version__ = "0.1.0"
