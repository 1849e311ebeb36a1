"""Baseline: SB3 SAC trained on the real MuJoCo env, scored as DreamSim's agents are.

    MUJOCO_GL=egl python benchmarks/sac_real.py reacher --steps 450000 --num-envs 4

SB3's default SAC settings, with ``--num-envs`` real envs stepped together (one gradient step per
vector step). Every ``--eval-every`` real steps the deterministic policy plays ``--episodes`` real
episodes on the transfer benchmark's seeds. SAC trains on the CPU: writes benchmarks/results/sac-real-<task>-cpu.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env
from tqdm import tqdm

from dreamsim.device import describe_machine
from dreamsim.files import write_json
from dreamsim.imagination import RealEvalCallback
from dreamsim.tasks import load_task, make_real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", nargs="?", default="reacher")
    parser.add_argument("--steps", type=int, default=450_000, help="real env steps")
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=50_000)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=30_000, help="first evaluation episode seed")
    args = parser.parse_args()
    if args.seed < 0:
        parser.error(f"--seed must be 0 or more, got {args.seed}")
    card = load_task(args.task)
    env = make_vec_env(lambda: make_real(card, render=False), n_envs=args.num_envs, seed=0)
    model = SAC("MlpPolicy", env, seed=0, device="cpu")
    with tqdm(total=args.steps, unit="step", desc=f"sac on real {card.name}") as bar:
        callback = RealEvalCallback(card.name, args.eval_every, args.episodes, args.seed, bar, steps_key="real_steps")
        model.learn(args.steps, callback=callback)
    result = {
        "task": card.name,
        "algo": "sac",
        "num_envs": args.num_envs,
        "real_steps": model.num_timesteps,
        "machine": describe_machine(),
        "command": "python benchmarks/sac_real.py " + " ".join(sys.argv[1:]),
        "history": callback.history,
    }
    write_json(Path("benchmarks/results") / f"sac-real-{card.name}-cpu.json", result)


if __name__ == "__main__":
    main()
