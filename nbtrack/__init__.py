"""nbtrack: a Jupyter-native experiment tracker.

import nbtrack
run = nbtrack.init(project="test_project", config={"lr": 1e-3})
run.log({"loss": 0.31}); run.finish()
"""

from nbtrack.errors import NbtrackError
from nbtrack.run import Run, finish, init, log

__version__ = "0.1.0"
__all__ = ["Run", "NbtrackError", "init", "log", "finish", "__version__"]
