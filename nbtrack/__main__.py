import sys

from nbtrack.cli import main

sys.exit(main())
