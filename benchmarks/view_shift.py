"""How much a shipped model's state estimate hangs on where the body sits in its fixed camera's view.

    MUJOCO_GL=egl python benchmarks/view_shift.py hopper --shifts 0 0.5 1 2 4

From states of random-action episodes, MuJoCo's root is moved ``shift`` metres along x and the
model predicts one step ahead from that single observation. Hopper's and HalfCheetah's observations
leave out the root's x, and their physics does not depend on it, so state and next state are the
same at every shift: only the frame changes. A model that read the state alone would score the same
at every shift. Writes benchmarks/results/view-shift-<task>-cpu.json.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from dreamsim.data.collect import run_episode
from dreamsim.device import describe_machine
from dreamsim.files import write_json
from dreamsim.model.checkpoint import load_for_task
from dreamsim.planning.objectives import step_physics
from dreamsim.tasks import load_task, make_real


@torch.inference_mode()
def one_step(model, obs: np.ndarray, frame: np.ndarray, action: np.ndarray) -> np.ndarray:
    """The model's next state after ``action`` from one real observation."""
    deter, stoch = model.initial(torch.as_tensor(frame[None]), torch.as_tensor(obs[None]))
    deter, stoch, _ = model.imagine(deter, stoch, torch.as_tensor(action[None]))
    return model.decode_state(model.features(deter, stoch))[0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", nargs="?", default="hopper")
    parser.add_argument("--shifts", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0], help="metres along x")
    parser.add_argument("--episodes", type=int, default=6, help="random-action episodes to take start states from")
    parser.add_argument("--starts", type=int, default=5, help="start states per episode")
    args = parser.parse_args()
    if min(args.episodes, args.starts) < 1:
        parser.error("--episodes and --starts must be at least 1")
    card = load_task(args.task)
    model = load_for_task(card, None, torch.device("cpu")).model.eval()
    std = model.state_std.numpy()
    env = make_real(card)
    raw = env.unwrapped
    if raw._get_obs().shape[0] != raw.data.qpos.shape[0] + raw.data.qvel.shape[0] - 1:  # type: ignore[attr-defined]
        parser.error(f"{card.gym_id}'s observation is not qpos without x plus qvel: the shift would change the state")
    episodes = [run_episode(env, seed) for seed in range(args.episodes)]
    rows = []
    for shift in args.shifts:
        errors, copy_last = [], []
        for ep in episodes:
            for t0 in np.linspace(0, len(ep) - 1, args.starts, endpoint=False).astype(int):
                qpos = ep.qpos[t0].copy()
                qpos[0] += shift
                raw.set_state(qpos, ep.qvel[t0])  # type: ignore[attr-defined]
                obs, frame = raw._get_obs().astype(np.float32), np.asarray(env.render())  # type: ignore[attr-defined]
                action = ep.actions[t0]
                real, _, _ = step_physics(raw, action.astype(np.float64), card.action_repeat)
                pred = one_step(model, obs, frame, action)
                errors.append(float(np.sqrt((((pred - real) / std) ** 2).mean())))
                copy_last.append(float(np.sqrt((((obs - real) / std) ** 2).mean())))
        row = {"shift": shift, "state_error": float(np.mean(errors)), "copy_last": float(np.mean(copy_last)), "n": len(errors)}
        rows.append(row)
        print(f"shift {shift:4.1f} m: state error {row['state_error']:.3f} (copy-last {row['copy_last']:.3f}, n={row['n']})")
    env.close()
    result = {
        "task": card.name,
        "checkpoint": f"assets/{card.name}",
        "command": "python benchmarks/view_shift.py " + " ".join(sys.argv[1:]),
        "rows": rows,
        "machine": describe_machine(),
    }
    write_json(f"benchmarks/results/view-shift-{card.name}-cpu.json", result)


if __name__ == "__main__":
    main()
