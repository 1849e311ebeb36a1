"""Throughput benchmark: DreamSim (batch 1 .. 16384, state and pixels) against real MuJoCo.

    MUJOCO_GL=egl python benchmarks/throughput.py            # same as `dreamsim bench` (--help: its options)

Writes benchmarks/results/throughput-<cpu|gpu>.json and .md (the README's table).
"""

from __future__ import annotations

import sys

from dreamsim.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
