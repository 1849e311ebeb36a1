"""How many steps ahead a world model foresees an event that a policy meets in real MuJoCo.

    MUJOCO_GL=egl python benchmarks/foresight.py halfcheetah --policy runs/loop-halfcheetah/agent/policy.zip \\
        --checkpoint runs/loop-halfcheetah/model/checkpoint --dim 1 --above 1.5

The policy plays real episodes (deterministic actions). The event is the first step at which state
dimension ``dim`` exceeds ``above``: for HalfCheetah, dimension 1 is the body's pitch, and above
1.5 rad the cheetah has flipped onto its back. From the real observation ``lead`` steps before the
event, the model imagines ``samples`` futures under the actions that ran in MuJoCo; an event is
foreseen in a future where the imagined dimension exceeds ``above`` within ``window`` steps of the
event's step. An agent trained in imagination learns to avoid only what the model foresees from the
states its imagined episodes pass through. Writes benchmarks/results/foresight-<task>-cpu.json.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dreamsim.control import PolicyAgent
from dreamsim.data.collect import run_episode
from dreamsim.device import describe_machine
from dreamsim.files import write_json
from dreamsim.imagination import load_policy
from dreamsim.model.checkpoint import load_for_task
from dreamsim.tasks import load_task, make_real


@torch.inference_mode()
def imagined_dim(model, obs: np.ndarray, frame: np.ndarray, actions: np.ndarray, dim: int, samples: int) -> np.ndarray:
    """``(samples, len(actions))``: state dimension ``dim`` along futures imagined from one real
    observation under ``actions``."""
    frames = torch.as_tensor(frame[None]).repeat(samples, 1, 1, 1)
    deter, stoch = model.initial(frames, torch.as_tensor(obs[None]).repeat(samples, 1))
    values = []
    for action in actions:
        deter, stoch, _ = model.imagine(deter, stoch, torch.as_tensor(action[None]).repeat(samples, 1))
        values.append(model.decode_state(model.features(deter, stoch))[:, dim].numpy())
    return np.stack(values, 1)


def foreseen(future: np.ndarray, lead: int, above: float) -> float:
    """Fraction of imagined futures ``(samples, steps)``, started ``lead`` steps before the event,
    whose value exceeds ``above`` at the event's step or after it."""
    return float((future[:, lead - 1 :] > above).any(1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task")
    parser.add_argument("--policy", required=True, help="an SB3 policy.zip trained on state observations")
    parser.add_argument("--checkpoint", default=None, help="world model (default: the task's shipped one)")
    parser.add_argument("--dim", type=int, required=True, help="state dimension the event is read from")
    parser.add_argument("--above", type=float, required=True, help="the event: the dimension first exceeds this")
    parser.add_argument("--episodes", type=int, default=10, help="real episodes (seeds 0..N-1)")
    parser.add_argument("--leads", type=int, nargs="+", default=[1, 2, 3, 5, 10, 20], help="steps before the event")
    parser.add_argument("--samples", type=int, default=16, help="imagined futures per start")
    parser.add_argument("--window", type=int, default=5, help="steps after the event's step that still count")
    parser.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/foresight-<task>-cpu.json)")
    args = parser.parse_args()
    if min(args.episodes, args.samples, *args.leads) < 1 or args.window < 0:
        parser.error("--episodes, --samples and every --leads must be at least 1, and --window at least 0")
    card = load_task(args.task)
    model = load_for_task(card, args.checkpoint, torch.device("cpu")).model.eval()
    if not 0 <= args.dim < model.cfg.state_dim:
        parser.error(f"--dim must lie in [0, {model.cfg.state_dim}) for {card.gym_id}")
    agent = PolicyAgent(load_policy(args.policy, card))
    if agent.needs_frames:
        parser.error(f"{args.policy} observes frames; pass a policy trained on state observations")
    env = make_real(card)
    rows: dict[int, list[float]] = {lead: [] for lead in args.leads}
    at_event: dict[int, list[float]] = {lead: [] for lead in args.leads}
    events, returns = [], []
    for seed in range(args.episodes):
        ep = run_episode(env, seed, lambda obs: agent.act(obs, None))
        returns.append(float(ep.rewards.sum()))
        crossed = np.flatnonzero(ep.obs[:, args.dim] > args.above)
        if len(crossed) == 0:
            continue
        event = int(crossed[0])
        events.append(event)
        for lead in args.leads:
            start = event - lead
            if start < 0:
                continue
            end = min(event + args.window, len(ep.actions))
            future = imagined_dim(model, ep.obs[start], ep.frames[start], ep.actions[start:end], args.dim, args.samples)
            rows[lead].append(foreseen(future, lead, args.above))
            at_event[lead].append(float(future[:, lead - 1].mean()))
    env.close()
    table = [
        {
            "lead": lead,
            "events": len(rows[lead]),
            "foreseen": float(np.mean(rows[lead])) if rows[lead] else None,
            "imagined_at_event": float(np.mean(at_event[lead])) if at_event[lead] else None,
        }
        for lead in args.leads
    ]
    result = {
        "task": card.name,
        "policy": args.policy,
        "checkpoint": str(args.checkpoint or f"assets/{card.name}"),
        "dim": args.dim,
        "above": args.above,
        "window": args.window,
        "samples": args.samples,
        "episodes": args.episodes,
        "event_steps": events,
        "real_returns": returns,
        "rows": table,
        "machine": describe_machine(),
    }
    out = args.out or f"benchmarks/results/foresight-{card.name}-cpu.json"
    write_json(out, result)
    reached = f"{len(events)} of {args.episodes} real episodes reach dim {args.dim} > {args.above}"
    print(f"{reached}; mean return of all {args.episodes} in MuJoCo: {np.mean(returns):.0f}")
    print("| steps ahead | events | futures that foresee it | imagined value at the event |")
    print("|---|---|---|---|")
    for row in table:
        seen = "-" if row["foreseen"] is None else f"{row['foreseen']:.0%}"
        value = "-" if row["imagined_at_event"] is None else f"{row['imagined_at_event']:.2f}"
        print(f"| {row['lead']} | {row['events']} | {seen} | {value} |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
