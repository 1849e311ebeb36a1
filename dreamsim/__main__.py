"""``python -m dreamsim``: the ``dreamsim`` command, for environments where its script is not on PATH."""

import sys

from dreamsim.cli import main

# The guard matters: collection workers are spawned, and each re-imports the main module.
if __name__ == "__main__":
    sys.exit(main())
