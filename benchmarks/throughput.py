"""Throughput benchmark: DreamSim (batch 1 .. 16384, state and pixels) against real MuJoCo.

    MUJOCO_GL=egl python benchmarks/throughput.py            # same as `dreamsim bench`

Writes benchmarks/results/throughput-<device>.json and .md (the README's table).
"""

from __future__ import annotations

import argparse
import sys

from dreamsim.cli import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_known_args()
    sys.exit(main(["bench", *sys.argv[1:]]))
