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
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from dreamsim.control import PolicyAgent, evaluate
from dreamsim.device import describe_machine
from dreamsim.files import write_json
from dreamsim.stats import plus_minus
from dreamsim.tasks import load_task, make_real


class Evaluate(BaseCallback):
    def __init__(self, task: str, every: int, episodes: int, seed: int):
        super().__init__()
        self.task, self.every, self.episodes, self.seed = task, every, episodes, seed
        self.history: list[dict] = []
        self._next = every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.every
            self.evaluate_now()
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1]["real_steps"] != self.num_timesteps:
            self.evaluate_now()  # the final policy is always scored, whatever --eval-every

    def evaluate_now(self) -> None:
        result = evaluate(self.task, PolicyAgent(self.model), self.episodes, self.seed)
        self.history.append({"real_steps": self.num_timesteps, **result})
        print(f"{self.num_timesteps} real steps: {plus_minus(result['return_mean'], result['return_ci95'])}", file=sys.stderr)


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
    callback = Evaluate(card.name, args.eval_every, args.episodes, args.seed)
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
