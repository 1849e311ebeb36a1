"""Command line: ``dreamsim collect | train | tune-decoder | validate | demo | loop | bench | plan``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import typing
from dataclasses import fields
from pathlib import Path

from dreamsim.stats import plus_minus
from dreamsim.tasks import DEFAULT_TASK, list_tasks, load_task

DEMO_AGENT_STEPS = 90_000  # about 2.5 minutes of SAC in DreamSim on a 2-core CPU


def _collect(args: argparse.Namespace) -> None:
    from dreamsim.data import collect

    card = load_task(args.task)
    out = Path(args.out or f"episodes/{card.name}")
    wanted = card.collect_steps if args.steps is None else args.steps
    policy = args.policy or card.collect_policy
    if policy == "random":
        steps = collect(card, out, wanted, args.workers, args.seed, progress=True)
    else:
        from dreamsim.data import collect_with_agent, collection_agent

        agent = collection_agent(card, policy, args.checkpoint, args.planner, args.device, args.seed or 0)
        steps = collect_with_agent(card, out, wanted, agent, args.noise, args.seed, progress=True)
    print(f"wrote {steps} steps to {out}")


def _train(args: argparse.Namespace) -> None:
    from dreamsim.training import TrainConfig, train

    card = load_task(args.task)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    config = TrainConfig(**overrides)
    out = Path(args.out or f"runs/{card.name}")
    from dreamsim.model.checkpoint import has_training_state, read_config

    if args.resume and config.init is None and has_training_state(out / "checkpoint"):
        done = read_config(out / "checkpoint").get("training", {}).get("steps", 0)
        if config.steps <= done:
            raise ValueError(f"{out} is at step {done} and --steps is the total to reach: pass more than {done}")
    metrics = train(card, args.episodes or f"episodes/{card.name}", out, config, resume=args.resume, progress=True)
    print(json.dumps({k: v for k, v in metrics.items() if not k.startswith("loss/")}, indent=2))
    print(f"checkpoint: {out / 'checkpoint'}   TensorBoard: tensorboard --logdir {out / 'tb'}")


def _tune_decoder(args: argparse.Namespace) -> None:
    from dreamsim.training import DecoderConfig, tune_decoder

    card = load_task(args.task)
    overrides = {f.name: getattr(args, f.name) for f in fields(DecoderConfig) if getattr(args, f.name, None) is not None}
    out = Path(args.out or f"runs/{card.name}-decoder")
    episodes = args.episodes or f"episodes/{card.name}"
    record = tune_decoder(card, episodes, out, DecoderConfig(**overrides), args.checkpoint, progress=True)
    print(json.dumps({k: record[k] for k in ("steps", "wall_time_s", "psnr_before", "psnr_after")}, indent=2))
    print(f"checkpoint: {out / 'checkpoint'}   TensorBoard: tensorboard --logdir {out / 'tb'}")


def _validate(args: argparse.Namespace) -> int:
    from dreamsim.validation.checks import Check, describe
    from dreamsim.validation.report import REPORT_FILES, ValidateConfig, validate

    config = ValidateConfig(
        policy=args.policy,
        episodes=args.episodes,
        starts=args.starts,
        horizon=args.horizon,
        transfer_episodes=args.transfer_episodes,
        seed=args.seed,
        device=args.device,
    )
    path = validate(args.target, args.out, config)
    print(path.read_text())
    written = sorted(f.name for f in path.parent.iterdir() if f.name in REPORT_FILES)
    print(f"report written to {path.parent} ({', '.join(written)})")
    items = json.loads((path.parent / "report.json").read_text())["checks"]["items"]
    failed = [Check(**{f.name: item[f.name] for f in fields(Check)}) for item in items if not item["passed"]]
    if failed:
        print(f"{len(failed)} of {len(items)} checks against the task card failed:", file=sys.stderr)
        print("\n".join(f"  {describe(c)}" for c in failed), file=sys.stderr)
    return 1 if failed and args.strict else 0


def _demo(args: argparse.Namespace) -> None:
    from dreamsim.validation.demo import run_demo

    report = run_demo(
        args.task,
        args.out,
        seed=args.seed,
        device=args.device,
        checkpoint=args.checkpoint,
        agent_steps=args.agent_steps,
        episodes=args.episodes,
        starts=args.starts,
        progress=True,
    )
    print(report.read_text())
    print(f"report written to {report} (with errors.png, rollouts.mp4 and report.json beside it)")


def _loop(args: argparse.Namespace) -> None:
    from dreamsim.loop import LoopConfig, run_loop
    from dreamsim.training import TrainConfig

    card = load_task(args.task)
    model = TrainConfig(
        steps=args.model_steps,
        preset=args.preset,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        open_loop_steps=args.open_loop_steps,
        lr=args.lr,
        eval_every=args.model_steps,
        checkpoint_every=args.model_steps,
        seed=args.seed,
        device=args.device,
        init=args.init,
    )
    config = LoopConfig(
        iterations=args.iterations,
        initial_steps=args.initial_steps,
        collect_steps=args.collect_steps,
        agent_steps=args.agent_steps,
        noise=args.noise,
        algo=args.algo,
        num_envs=args.num_envs,
        eval_episodes=args.eval_episodes,
        workers=args.workers,
        seed=args.seed,
        device=args.device,
        rollout_length=args.rollout_length,
        train=model,
    )
    out = Path(args.out or f"runs/loop-{card.name}")
    state = run_loop(card, out, config, progress=True)
    print(f"| iteration | real steps | {card.gym_id} steps | world-model steps | DreamSim steps | return in MuJoCo | random |")
    print("|---|---|---|---|---|---|---|")
    for e in state["history"]:
        print(
            f"| {e['iteration']} | {e['real_steps']} | {e['real_steps'] * card.action_repeat} "
            f"| {e['model_steps']} | {e['dream_steps']} "
            f"| {plus_minus(e['return_mean'], e['return_ci95'])} | {e['random_return_mean']:.2f} |"
        )
    print(f"loop state: {out / 'loop.json'}   TensorBoard: tensorboard --logdir {out / 'tb'}")


def _bench(args: argparse.Namespace) -> None:
    from dreamsim.device import result_kind
    from dreamsim.files import write_json, write_text
    from dreamsim.throughput import BenchConfig, markdown, run

    cfg = BenchConfig(
        task=args.task,
        batches=tuple(args.batches),
        seconds=args.seconds,
        device=args.device,
        checkpoint=args.checkpoint,
    )
    result = run(cfg, progress=lambda what: print(f"measuring {what} ...", file=sys.stderr))
    kind = result_kind(result["device"])
    out = Path(args.out)
    write_json(out / f"throughput-{kind}.json", result)
    table = markdown(result)
    write_text(out / f"throughput-{kind}.md", table)
    print(table)
    print(f"written to {out / f'throughput-{kind}.json'}")


def _plan(args: argparse.Namespace) -> None:
    from dreamsim.planning.benchmark import PlanBenchConfig, markdown, run, write

    cfg = PlanBenchConfig(
        task=args.task,
        rows=tuple(args.rows),
        episodes=args.episodes,
        max_steps=args.max_steps,
        seed=args.seed,
        cem_preset=args.cem_preset,
        mppi_preset=args.mppi_preset,
        horizon=args.horizon,
        checkpoint=args.checkpoint,
        device=args.device,
    )
    result = run(cfg, progress=lambda line: print(line, flush=True))
    print(markdown(result))
    if args.out:
        print(f"written to {write(result, args.out)}")


_OPEN_LOOP_HELP = (
    "also train imagined rollouts of this many steps, from every latent of a window with room for them, on the "
    "real states and rewards they reach; less than --seq-len (default: 0, one-step losses only)"
)


def _add_config_options(p: argparse.ArgumentParser, config: type, notes: dict[str, str] | None = None) -> None:
    """One ``--option`` per field of the dataclass ``config``; left out, the field keeps its default.
    ``notes`` gives the help of fields whose default needs words."""
    from dreamsim.recipes import option_type

    hints = typing.get_type_hints(config)
    for f in fields(config):
        flag = f"--{f.name.replace('_', '-')}"
        text = (notes or {}).get(f.name, f"default: {f.default}")
        if hints[f.name] is bool:  # --name / --no-name
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            p.add_argument(flag, dest=f.name, type=option_type(hints[f.name]), help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamsim", description="Learned MuJoCo simulators as Gymnasium envs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    sub = parser.add_subparsers(dest="command", required=True)
    tasks = ", ".join(list_tasks())

    p = sub.add_parser("collect", help="collect real MuJoCo episodes (frames, state, actions, rewards)")
    p.add_argument("task", help=f"task card: {tasks}")
    p.add_argument("--steps", type=int, help="agent steps to collect (default: the card's)")
    p.add_argument("--workers", type=int, default=2, help="parallel worker processes")
    p.add_argument("--seed", type=int, help="seed of the episode seeds (default: fresh entropy)")
    p.add_argument("--out", help="episode folder (default: episodes/<task>)")
    p.add_argument(
        "--policy",
        help="random, mpc (latent MPC on --checkpoint) or a saved agent's policy.zip (a recipe's or a loop's); "
        "the last two run in one process (default: the card's, random)",
    )
    p.add_argument("--checkpoint", help="world model for --policy mpc (default: the task's shipped one)")
    p.add_argument("--planner", help="planner preset for --policy mpc (default: tdmpc2-mppi)")
    p.add_argument(
        "--noise",
        type=float,
        default=0.3,
        help="exploration noise for --policy mpc or a saved agent: std, in half-widths of the action box (0: none)",
    )
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_collect)

    from dreamsim.training import TrainConfig

    p = sub.add_parser("train", help="train a world model on collected episodes")
    p.add_argument("task", help=f"task card: {tasks}")
    p.add_argument("--episodes", help="episode folder (default: episodes/<task>)")
    p.add_argument("--out", help="run folder for checkpoint/ and tb/ (default: runs/<task>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the training checkpoint in --out: its weights and optimizer state; --lr and the other "
        "settings come from this command line",
    )
    _add_config_options(
        p,
        TrainConfig,
        {
            "steps": f"training steps in all: with --resume, the total to reach (default: {TrainConfig.steps})",
            "preset": "world-model preset: tiny, small or base (default: the task card's)",
            "init": "checkpoint to start from, with a fresh optimizer (default: a new model)",
            "open_loop_steps": _OPEN_LOOP_HELP,
        },
    )
    p.set_defaults(func=_train)

    from dreamsim.training import DecoderConfig

    p = sub.add_parser("tune-decoder", help="train a checkpoint's frame decoder alone on its frozen latents (sharper frames)")
    p.add_argument("task", help=f"task card: {tasks}")
    p.add_argument("--checkpoint", help="checkpoint folder (default: the task's shipped one)")
    p.add_argument("--episodes", help="episode folder, its training split (default: episodes/<task>)")
    p.add_argument("--out", help="run folder for checkpoint/ and tb/ (default: runs/<task>-decoder)")
    _add_config_options(p, DecoderConfig)
    p.set_defaults(func=_tune_decoder)

    p = sub.add_parser("validate", help="a checkpoint against MuJoCo: matched-state fidelity, transfer gap, plot, video")
    p.add_argument("target", help="task name (its shipped checkpoint) or a checkpoint folder")
    p.add_argument("--policy", help="SB3 policy .zip to validate beside random actions")
    p.add_argument("--episodes", help="folder of held-out real episodes for the open-loop fidelity table")
    p.add_argument("--starts", type=int, default=16, help="matched real start states (default: 16)")
    p.add_argument(
        "--horizon",
        type=int,
        default=50,
        help="steps rolled from each start, fewer where the real episode terminates; the card's horizons past "
        "it go unchecked (default: 50)",
    )
    p.add_argument("--transfer-episodes", type=int, default=10, help="paired episodes for the transfer gap (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument("--out", help="report folder (default: reports/<task>)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a check against the task card fails")
    p.set_defaults(func=_validate)

    p = sub.add_parser("demo", help="SAC trained in DreamSim only, scored in MuJoCo, and the validation report")
    p.add_argument("task", nargs="?", help=f"task card: {tasks} (default: --checkpoint's task, else {DEFAULT_TASK})")
    p.add_argument("--out", default="demo", help="report folder")
    p.add_argument("--checkpoint", help="checkpoint folder (default: the task's shipped one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--agent-steps", type=int, default=DEMO_AGENT_STEPS, help="SAC steps in DreamSim (0: no agent)")
    p.add_argument("--episodes", type=int, default=10, help="real episodes per score and for the transfer gap")
    p.add_argument("--starts", type=int, default=16, help="matched real start states in the report")
    p.set_defaults(func=_demo)

    from dreamsim.loop import LoopConfig

    d = LoopConfig()
    p = sub.add_parser("loop", help="Dyna loop: collect with the policy, fine-tune the model, train in DreamSim, score in MuJoCo")
    p.add_argument("task", help=f"task card: {tasks}")
    p.add_argument("--out", help="loop folder (default: runs/loop-<task>); rerun to resume or extend")
    p.add_argument("--iterations", type=int, default=d.iterations, help="total iterations (a rerun continues up to it)")
    p.add_argument("--initial-steps", type=int, default=d.initial_steps, help="random real steps before the first model")
    p.add_argument("--collect-steps", type=int, default=d.collect_steps, help="real steps collected by the policy per iteration")
    p.add_argument("--model-steps", type=int, default=d.train.steps, help="world-model training steps per iteration")
    p.add_argument("--agent-steps", type=int, default=d.agent_steps, help="DreamSim steps of agent training per iteration")
    p.add_argument("--noise", type=float, default=d.noise, help="exploration noise: std, in half-widths of the action box")
    p.add_argument("--algo", choices=("sac", "ppo"), default=d.algo, help="SB3 agent trained in DreamSim")
    p.add_argument("--num-envs", type=int, default=d.num_envs, help="DreamSim envs the agent trains on")
    p.add_argument("--eval-episodes", type=int, default=d.eval_episodes, help="real episodes per evaluation")
    p.add_argument("--workers", type=int, default=d.workers, help="processes for the initial random collection")
    p.add_argument(
        "--rollout-length",
        type=int,
        help="MBPO-style: imagined episodes of this many steps, started anywhere in the real data (default: whole episodes)",
    )
    p.add_argument("--preset", help="world-model preset (default: the card's)")
    p.add_argument("--init", help="checkpoint the world model starts from (e.g. assets/hopper); default: a new model")
    p.add_argument("--batch-size", type=int, default=d.train.batch_size)
    p.add_argument("--seq-len", type=int, default=d.train.seq_len)
    p.add_argument("--open-loop-steps", type=int, default=d.train.open_loop_steps, help=_OPEN_LOOP_HELP)
    p.add_argument("--lr", type=float, default=d.train.lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_loop)

    p = sub.add_parser("bench", help="throughput of DreamSim against real MuJoCo on this machine")
    p.add_argument("task", nargs="?", default=DEFAULT_TASK, help=f"task card: {tasks}")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024, 16384])
    p.add_argument("--seconds", type=float, default=3.0, help="measuring time per configuration")
    p.add_argument("--device", default="auto")
    p.add_argument("--checkpoint", help="checkpoint folder (default: the task's shipped one)")
    p.add_argument("--out", default="benchmarks/results", help="folder for the JSON and Markdown results")
    p.set_defaults(func=_bench)

    from dreamsim.planning.benchmark import ROWS
    from dreamsim.planning.planner import PRESETS

    p = sub.add_parser("plan", help="CEM/MPPI in DreamSim's latent space and in MuJoCo, scored in real MuJoCo")
    p.add_argument("task", nargs="?", default=DEFAULT_TASK, help=f"task card: {tasks}")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS, help="planners to run")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--max-steps", type=int, help="cap on each episode's steps (default: the card's episode length)")
    p.add_argument("--seed", type=int, default=0, help="first episode seed (episodes use seed, seed + 1, ...)")
    p.add_argument(
        "--cem-preset",
        default="tdmpc2-cem",
        choices=sorted(PRESETS),
        help="CEM's settings (default: %(default)s; planet-cem, PlaNet's 120k model steps per action, is for a GPU)",
    )
    p.add_argument("--mppi-preset", default="tdmpc2-mppi", choices=sorted(PRESETS), help="MPPI's settings (default: %(default)s)")
    p.add_argument("--horizon", type=int, help="planning horizon for CEM and MPPI (default: each preset's own)")
    p.add_argument("--checkpoint", help="checkpoint folder (default: the task's shipped one)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="folder for planning-<task>[-h<horizon>]-<cpu|gpu>.json and .md (default: print only)")
    p.set_defaults(func=_plan)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _usage_problem(args: argparse.Namespace) -> str | None:
    """Usage errors found before any work: an ``--out`` that names a file, a negative ``--seed``."""
    out, seed = getattr(args, "out", None), getattr(args, "seed", None)
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        return f"--out {out} is a file: pass a folder"
    if seed is not None and seed < 0:
        return f"--seed must be 0 or more, got {seed}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if problem := _usage_problem(args):
        parser.error(problem)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    # SIGTERM (from `timeout`, `kill` or a batch scheduler) stops a command as Ctrl-C does: training
    # writes its checkpoint, and collection stops its worker processes instead of orphaning workers
    # that would go on writing episodes after the command has ended.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        status = args.func(args) or 0  # a command's own status (validate --strict), else success
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"dreamsim {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dreamsim {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return status


if __name__ == "__main__":
    sys.exit(main())
