"""What a run records about where it ran (W&B's Overview and Files content).

`capture()` is slow-ish (package list, git): the run's writer thread calls it, never the training thread.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nbtrack.common.redact import is_secret_name, mask, mask_argv, mask_urls

# Environment variables a run records: those known to change what a program computes or which code it loads
# (an allow-list, so a variable nobody thought of, such as a service's key under an odd name, is never stored).
# Values are masked too (NBTRACK_STORE may be a URL with a password); credential-like names are dropped.
RESULT_PREFIXES = (
    "CUDA_",
    "CUDNN_",
    "CUBLAS_",
    "NCCL_",
    "NVIDIA_",
    "TF_",
    "JAX_",
    "XLA_",
    "KERAS_",
    "TORCH_",
    "PYTORCH_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "BLIS_",
    "NUMEXPR_",
    "NUMBA_",
    "NBTRACK_",
    "LC_",
)
RESULT_NAMES = frozenset(
    {
        "PYTHONHASHSEED",
        "PYTHONPATH",
        "PYTHONOPTIMIZE",
        "PYTHONWARNINGS",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "PATH",
        "LD_LIBRARY_PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "MPLBACKEND",
        "TOKENIZERS_PARALLELISM",
        "HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
    }
)
_GIT_DIFF_LIMIT = 5_000_000


def is_result_setting(name: str) -> bool:
    """Whether an environment variable is one a run records: on the allow-list, and not credential-like."""
    return (name in RESULT_NAMES or name.startswith(RESULT_PREFIXES)) and not is_secret_name(name)


def safe_environment_variables(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed environment variables (`is_result_setting`), their values masked (`nbtrack.common.redact`)."""
    environ = dict(os.environ if environ is None else environ)
    return {name: mask(value) for name, value in sorted(environ.items()) if is_result_setting(name)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import psutil  # optional

        return int(psutil.virtual_memory().total)
    except Exception:
        return None


def gpu_names() -> list[str]:
    """Names of visible NVIDIA GPUs (NVML when installed, else the driver's /proc entries); [] when none."""
    try:
        import pynvml  # nvidia-ml-py, optional

        pynvml.nvmlInit()
        try:
            names = []
            for index in range(pynvml.nvmlDeviceGetCount()):
                name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(index))
                names.append(name.decode() if isinstance(name, bytes) else str(name))
            return names
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        pass
    names = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            for line in info.read_text().splitlines():
                if line.startswith("Model:"):
                    names.append(line.split(":", 1)[1].strip())
        except OSError:
            continue
    return names


def installed_packages() -> dict[str, str]:
    """Distribution name -> version for every installed distribution (what `pip freeze` lists).

    Read from the ``*.dist-info`` / ``*.egg-info`` folder names on sys.path, which is ~20x faster than
    opening every distribution's metadata; folders whose names don't carry a version fall back to it.
    """
    from importlib import metadata

    packages: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if suffix not in ("dist-info", "egg-info") or not dot:
                continue
            distribution, dash, version = stem.partition("-")
            if dash and version and version[0].isdigit():
                packages.setdefault(distribution.replace("_", "-"), version.split("-py")[0])
            else:
                try:
                    dist = metadata.Distribution.at(os.path.join(entry or ".", name))
                    if dist.metadata and dist.metadata.get("Name"):
                        packages.setdefault(dist.metadata["Name"], dist.version)
                except Exception:
                    continue
    return dict(sorted(packages.items(), key=lambda kv: kv[0].lower()))


def _git(args: list[str], cwd: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(cwd: str | None = None) -> dict[str, Any] | None:
    """Commit, branch, remote and uncommitted diff of the repository around `cwd`; None outside one."""
    cwd = cwd or os.getcwd()
    root = _git(["rev-parse", "--show-toplevel"], cwd)
    if root is None:
        return None
    commit = (_git(["rev-parse", "HEAD"], cwd) or "").strip() or None
    branch = (_git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or "").strip() or None
    remote = (_git(["config", "--get", "remote.origin.url"], cwd) or "").strip() or None
    diff = _git(["diff", "HEAD"], cwd) if commit else _git(["diff"], cwd)
    diff = diff or ""
    return {
        "root": root.strip(),
        "commit": commit,
        "branch": branch,
        "remote": mask(remote) if remote else None,
        "dirty": bool(diff.strip()),
        "diff": mask_urls(diff[:_GIT_DIFF_LIMIT]),
    }


def notebook_path() -> str | None:
    """The notebook this kernel serves, when the front-end says (Jupyter Server, VS Code)."""
    for name in ("JPY_SESSION_NAME", "__vsc_ipynb_file__"):
        value = os.environ.get(name)
        if value:
            return value
    main = sys.modules.get("__main__")
    value = getattr(main, "__vsc_ipynb_file__", None) or getattr(main, "__session__", None)
    return str(value) if value else None


def session_code() -> dict[str, str] | None:
    """The code cells run in this IPython session so far, as a script and as a notebook (nbformat 4.5 JSON,
    written directly: importing nbformat and validating takes ~1.3 s at the end of every fit)."""
    main = sys.modules.get("IPython")
    shell = main.get_ipython() if main is not None else None
    if shell is None:
        return None
    # A store URL typed into a cell carries its password: mask URLs, keep the rest of the code as typed.
    cells = [mask_urls(cell) for cell in shell.user_ns.get("In", [])[1:] if cell and cell.strip()]
    if not cells:
        return None
    script = "".join(f"# In[{i}]:\n{cell.rstrip()}\n\n" for i, cell in enumerate(cells, 1))
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell-{i}",
                "metadata": {},
                "outputs": [],
                "source": cell.splitlines(keepends=True),
            }
            for i, cell in enumerate(cells, 1)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return {"py": script, "ipynb": json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"}


def program() -> dict[str, Any]:
    """How the run's process was started: notebook path or command line (credentials masked), working directory."""
    return {
        "notebook": notebook_path(),
        "argv": mask_argv(sys.argv),
        "executable": sys.executable,
        "cwd": os.getcwd(),
    }


def capture(started: float | None = None) -> dict[str, Any]:
    """The environment a run records at init. Never raises: a part that fails is recorded as missing."""
    env: dict[str, Any] = {"started": started or time.time()}
    parts = {
        "python": lambda: {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "os": lambda: {
            "system": platform.system(),
            "release": platform.release(),
            "platform": platform.platform(),
        },
        "host": lambda: {"hostname": socket.gethostname(), "user": getpass.getuser()},
        "hardware": lambda: {
            "cpu_count": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "memory_total": _total_memory(),
            "gpus": gpu_names(),
        },
        "program": program,
        "git": git_state,
        "packages": installed_packages,
        "environment_variables": safe_environment_variables,
    }
    for name, fn in parts.items():
        try:
            env[name] = fn()
        except Exception as exc:  # recorded, never raised: the run goes on without this part
            env[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return env


def requirements_txt(packages: dict[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in packages.items())
