"""Execute a notebook headless with a real kernel (nbclient), as `make demo` and the tests do.

python -m nbtrack.reports.execute notebooks/01_quickstart.ipynb -o build/01_quickstart.ipynb
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def execute_notebook(
    path: str | Path, output: str | Path | None = None, *, timeout: int = 900, cwd: str | Path | None = None
):  # type: ignore[no-untyped-def]
    """Run every cell of `path` in a fresh kernel started in `cwd` (default: the notebook's folder)."""
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            f"Executing notebooks needs nbclient and nbformat ({exc}). Install them with "
            "`pip install 'nbtrack[notebook]'`."
        ) from None
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd or path.parent)}},
    )
    client.execute()
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, output)
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nbtrack.reports.execute", description=__doc__.splitlines()[0]
    )
    parser.add_argument("notebook")
    parser.add_argument("-o", "--output", help="where to write the executed notebook")
    parser.add_argument("--timeout", type=int, default=900, help="seconds a cell may run")
    args = parser.parse_args(argv)
    execute_notebook(args.notebook, args.output, timeout=args.timeout)
    print(f"Executed {args.notebook}" + (f" -> {args.output}" if args.output else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
