"""Planning benchmark: CEM and MPPI on DreamSim and on MuJoCo itself, and random, scored in real MuJoCo.

    MUJOCO_GL=egl python benchmarks/planning.py reacher --episodes 5

Same as `dreamsim plan <task> --out benchmarks/results`; writes
benchmarks/results/planning-<task>-<cpu|gpu>.json and .md (the README's table), or
planning-<task>-h<N>-<cpu|gpu>.* with `--horizon N`.
"""

from __future__ import annotations

import sys

from dreamsim.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "-h" in args or "--help" in args:
        print(__doc__)  # the options below are `dreamsim plan`'s, whose --out this script sets
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", "benchmarks/results"]
    sys.exit(main(["plan", *args]))
