"""Transfer benchmark: an agent trained in DreamSim only, run in MuJoCo and in DreamSim, beside baselines.

    MUJOCO_GL=egl python agents/sac_in_dream.py reacher --steps 150000 --eval-every 30000
    MUJOCO_GL=egl python benchmarks/transfer.py runs/sac-in-dream-reacher --episodes 20

The trained policy, uniform random actions and the constant middle action each play ``--episodes``
paired episodes: MuJoCo reset with seed ``--seed + i``, DreamSim started from that same real state.
Writes benchmarks/results/transfer-<task>-<cpu|gpu>.json and rebuilds benchmarks/results/transfer.md
(the README's table) from every transfer-*.json there, beside `benchmarks/sac_real.py`'s result
for the task when there is one: "kept" is the share of that real-env SAC's gain over random
actions that the DreamSim-trained agent reaches.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from dreamsim.control import ConstantAgent, PolicyAgent, RandomAgent
from dreamsim.device import describe_machine, resolve_device, result_kind
from dreamsim.files import display_path, read_json, write_json, write_text
from dreamsim.imagination import load_policy
from dreamsim.stats import plus_minus
from dreamsim.tasks import load_task, real_spaces
from dreamsim.validation.report import resolve_target
from dreamsim.validation.transfer import transfer_gap

RESULTS = Path("benchmarks/results")


def run(args: argparse.Namespace) -> dict:
    run_dir = Path(args.run)
    missing = [name for name in ("returns.json", "policy.zip") if not (run_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{run_dir} lacks {' and '.join(missing)}: pass a finished agents/ recipe run folder")
    returns = read_json(run_dir / "returns.json", "rerun the recipe that wrote it")
    task, ckpt = resolve_target(returns["config"]["checkpoint"] or returns["task"], args.device)
    space = real_spaces(task)[1]
    agents = {
        "trained": PolicyAgent(load_policy(run_dir / "policy.zip", task)),
        "random": RandomAgent(space, seed=args.seed),
        "constant": ConstantAgent(space),
    }
    print(f"{len(agents)} agents x {args.episodes} paired episodes in MuJoCo and DreamSim ...", file=sys.stderr)
    gap = transfer_gap(task, agents, args.episodes, args.seed, ckpt.path, args.device)
    return {
        "task": task.name,
        "checkpoint": display_path(ckpt.path),
        "world_model_real_steps": ckpt.config["training"]["real_steps"],
        "algo": returns["config"]["algo"],
        "dream_steps": returns["final"]["dream_steps"],
        "agent_real_steps": returns["real_env_steps_for_training"],
        "episodes": args.episodes,
        "seed": args.seed,
        "device": str(resolve_device(args.device)),
        "machine": describe_machine(),
        "command": "python benchmarks/transfer.py " + shlex.join(sys.argv[1:]),
        "agents": gap,
    }


def _real_sac(task: str) -> dict | None:
    """The last evaluation of ``benchmarks/sac_real.py`` on ``task``, if it was run."""
    runs = sorted(RESULTS.glob(f"sac-real-{task}-*.json"))
    history = json.loads(runs[0].read_text())["history"] if runs else []
    return history[-1] if history else None


def _steps(task: str, real_steps: int) -> str:
    """Real steps, with the Gymnasium steps they span where the card repeats each action."""
    card = load_task(task)
    if card.action_repeat == 1:
        return f"{real_steps:,}"
    return f"{real_steps:,} ({real_steps * card.action_repeat:,} `{card.gym_id}` steps)"


def markdown(results: list[dict]) -> str:
    rows = [
        "| task | real steps (world model) | agent, DreamSim steps | return in MuJoCo | random | constant action "
        "| return in DreamSim (gap) | SB3 SAC on the real env | kept | command |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        a = r["agents"]
        real = {name: plus_minus(v["real_mean"], v["real_ci95"]) for name, v in a.items()}
        t = a["trained"]
        sac, baseline, kept = _real_sac(r["task"]), "-", "-"
        if sac is not None:
            baseline = f"{plus_minus(sac['return_mean'], sac['return_ci95'])} ({sac['real_steps']:,} real steps)"
            gain = sac["return_mean"] - a["random"]["real_mean"]
            kept = f"{100 * (t['real_mean'] - a['random']['real_mean']) / gain:.0f}%" if gain else "-"
        rows.append(
            f"| {r['task']} | {_steps(r['task'], r['world_model_real_steps'])} "
            f"| {r['algo'].upper()}, {r['dream_steps']:,} | {real['trained']} "
            f"| {real['random']} | {real['constant']} | {t['dream_mean']:.2f} "
            f"({plus_minus(t['gap_mean'], t['gap_ci95'], '+.2f')}) | {baseline} | {kept} | `{r['command']}` |"
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", help="an agents/ recipe run folder (policy.zip, returns.json); none: rebuild the table")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=30_000, help="first episode seed (apart from the recipes' evaluation seeds)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.seed < 0:
        parser.error(f"--seed must be 0 or more, got {args.seed}")
    if args.run is not None:
        try:
            result = run(args)
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
        kind = result_kind(result["device"])
        write_json(RESULTS / f"transfer-{result['task']}-{kind}.json", result)
    table = markdown([json.loads(p.read_text()) for p in sorted(RESULTS.glob("transfer-*.json"))])
    write_text(RESULTS / "transfer.md", table)
    print(table)


if __name__ == "__main__":
    main()
