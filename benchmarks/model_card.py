"""Write MODEL_CARD.md for a checkpoint folder from its config.json and fidelity.json.

    MUJOCO_GL=egl python benchmarks/fidelity.py --rescore reacher   # writes assets/reacher/fidelity.json
    python benchmarks/model_card.py assets/reacher
    python benchmarks/model_card.py assets/hopper --loop runs/loop-hopper/loop.json   # a `dreamsim loop` model
    python benchmarks/model_card.py assets/halfcheetah --fidelity-note "..."   # what the table's numbers miss
    python benchmarks/model_card.py assets/hopper --loop runs/loop-hopper/loop.json --start-loop <loop.json>
        # a loop run with --init from a model that another loop trained
        # (either of them, then `dreamsim train --init` from that loop's model: told by the world-model steps)

Every number in the card comes from those files; the collection commands are the recipe the
shipped checkpoints were made with (the task card's step count, seed 1; held-out: seed 2), or the
loop's own settings with ``--loop``.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any

from safetensors.numpy import load_file

from dreamsim.files import write_text
from dreamsim.stats import plus_minus
from dreamsim.tasks import Task, load_task
from dreamsim.training import TrainConfig, fidelity_table


def _random_collection(task: Task) -> str:
    """The command that collected a shipped model's random data."""
    return f"`dreamsim collect {task.name} --steps {task.collect_steps} --workers 2 --seed 1`"


def _random_recipe(task: Task, training: dict[str, Any]) -> tuple[str, str]:
    """Data and training bullets of a model trained by `dreamsim train` on random data."""
    return f"- Uniform random policy: {_random_collection(task)}.\n", f"- {_train_command(task, training)}: "


def _train_command(task: Task, training: dict[str, Any], init: str = "") -> str:
    """The `dreamsim train` command of a run, with the steps its checkpoint holds: a run stopped
    early (Ctrl-C) saves fewer than it asked for, and then says so."""
    cfg = training["config"]
    batch = "" if cfg["batch_size"] == TrainConfig.batch_size else f" --batch-size {cfg['batch_size']}"
    seq = "" if cfg["seq_len"] == TrainConfig.seq_len else f" --seq-len {cfg['seq_len']}"
    open_loop = f" --open-loop-steps {cfg['open_loop_steps']}" if cfg.get("open_loop_steps") else ""
    command = f"`dreamsim train {task.name}{init} --steps {training['steps']} --lr {cfg['lr']}{batch}{seq}{open_loop}`"
    if training["steps"] < cfg["steps"]:
        return f"Stopped after {training['steps']:,} of {cfg['steps']:,} planned steps; to repeat it:\n  {command}"
    return command


def _repeat_note(task: Task) -> str:
    """Where the card repeats each action, what a real step spans (the unit of every step count here)."""
    if task.action_repeat == 1:
        return ""
    return f"\n  Each real step (agent step) spans {task.action_repeat} `{task.gym_id}` steps: the card's action repeat."


def _training(task: Task, record: dict[str, Any], loop: dict[str, Any] | None, start_loop: dict[str, Any] | None) -> str:
    """Training bullets of a checkpoint from its record (``config.json`` less the model): those of
    the checkpoint it started from (``--init``; ``start_loop`` when a loop trained that one), then its
    own run, then its decoder tunings."""
    training = record["training"]
    if loop is not None and _fine_tuned_after(loop, record):  # `dreamsim train --init` from the loop's model
        head = _training(task, record["init"], loop, start_loop)
        command = _train_command(task, training, " --init <the model above>")
        head += f"- Then the whole model, from the model above:\n  {command}: "
    elif "init" in record and loop is not None:  # `dreamsim loop --init`: the start model was not the loop's
        head = _training(task, record["init"], start_loop, None) + _loop_recipe(task, loop, init=True)[1]
    elif "init" in record:
        head = _training(task, record["init"], None, None)
        command = _train_command(task, training, " --init <the model above>")
        head += f"- Then the whole model, from the model above:\n  {command}: "
    else:
        head = (_random_recipe(task, training) if loop is None else _loop_recipe(task, loop))[1]
    cfg, m = training["config"], training.get("machine", {})
    machine = m.get("gpu") or f"{m.get('cpu_count', '?')}-core CPU, {m.get('platform', 'unknown platform')}"
    return (
        f"{head}{training['steps']:,} steps of batch {cfg['batch_size']} x\n  {cfg['seq_len']}, Adam, "
        f"{training['wall_time_s'] / 60:.0f} min of training time on `{training['device']}` ({machine}).\n"
        + _decoder_tuning(task, record.get("decoder_tuning", []))
    )


def _fine_tuned_after(loop: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether this record's own run is a `dreamsim train --init` from the model that the loop of
    ``loop.json`` trained: told by the world-model steps, the loop's total being the start model's."""
    steps = loop["history"][-1]["model_steps"]
    return record["training"]["steps"] != steps and record.get("init", {}).get("training", {}).get("steps") == steps


def _loop_recipe(task: Task, loop: dict[str, Any], init: bool = False) -> tuple[str, str]:
    """Data and training bullets of a model trained by `dreamsim loop` (from its ``loop.json``);
    ``init``: the loop started from another model (``--init``), whose bullets come first."""
    c, t = loop["config"], loop["config"]["train"]
    history = loop["history"]
    data = f"- Collected by `dreamsim loop`: {_loop_data(loop)}.\n"
    train = (
        f"- {'Then, from the model above, ' if init else ''}"
        f"`dreamsim loop {task.name} --iterations {len(history)} --initial-steps {c['initial_steps']} "
        f"--collect-steps {c['collect_steps']}\n  --model-steps {t['steps']} --agent-steps {c['agent_steps']} "
        f"--eval-episodes {c['eval_episodes']} --lr {t['lr']} --seed {c['seed']}"
        f"{'' if c.get('rollout_length') is None else ' --rollout-length ' + str(c['rollout_length'])}"
        f"{' --init <the model above>' if init else ''}`:\n  the world model trains "
    )
    return data, train


def _loop_data(loop: dict[str, Any]) -> str:
    """What a loop collected, in words: random steps for iteration 0, the agent's in each later one."""
    c = loop["config"]
    later = len(loop["history"]) - 1
    text = f"{c['initial_steps']:,} steps of a uniform random policy"
    if later:
        iterations = "iteration 1" if later == 1 else f"each of iterations 1 {'and' if later == 2 else 'to'} {later}"
        text += (
            f", then\n  {c['collect_steps']:,} steps in {iterations} "
            f"by the loop's {c['algo'].upper()} agent with Gaussian noise (std {c['noise']} of the action box's half-width)"
        )
    return text


def _decoder_tuning(task: Task, records: list[dict[str, Any]]) -> str:
    """Training bullets for each `dreamsim tune-decoder` run the checkpoint went through."""
    lines = []
    for r in records:
        c, m = r["config"], r.get("machine", {})
        machine = m.get("gpu") or f"{m.get('cpu_count', '?')}-core CPU"
        before, after = r["psnr_before"], r["psnr_after"]
        lines.append(
            f"- Then the frame decoder alone, on the frozen latents of the model above:\n"
            f"  `dreamsim tune-decoder {task.name} --checkpoint <the model above> --episodes {r['episode_folder']} "
            f"--steps {c['steps']} --lr {c['lr']}{' --reference' if c.get('reference') else ''}`:\n"
            f"  {r['steps']:,} steps of {c['batch_size']} frames, Adam, "
            f"{r['wall_time_s'] / 60:.0f} min on `{r['device']}` ({machine}); the other weights\n  are unchanged. "
            f"One-step frame PSNR on {r['val_episodes']} episodes held out from that data: "
            f"{before['one_step/psnr']:.2f} -> {after['one_step/psnr']:.2f} dB.\n"
        )
    return "".join(lines)


def _loop_table(loop: dict[str, Any], start_model: bool) -> str:
    whose = "The start model's loop: its agent" if start_model else "The loop's agent"
    rows = [
        f"## {whose}, scored in MuJoCo",
        "| iteration | real steps | world-model steps | DreamSim steps | real return | random policy |",
        "|---|---|---|---|---|---|",
    ]
    for e in loop["history"]:
        rows.append(
            f"| {e['iteration']} | {e['real_steps']:,} | {e['model_steps']:,} | {e['dream_steps']:,} "
            f"| {plus_minus(e['return_mean'], e['return_ci95'], '.1f')} | {e['random_return_mean']:.1f} |"
        )
    return "\n".join(rows) + "\n\n"


def card(
    folder: Path,
    data_notes: tuple[str, ...] = (),
    loop: dict[str, Any] | None = None,
    fidelity_notes: tuple[str, ...] = (),
    start_loop: dict[str, Any] | None = None,
) -> str:
    """The card's text; ``loop``: the loop.json of the `dreamsim loop` that trained the model, and
    ``start_loop`` that of the loop that trained its start model (``--init``), if a loop did."""
    config = json.loads((folder / "config.json").read_text())
    fid = json.loads((folder / "fidelity.json").read_text())
    task = load_task(config["task"])
    training = config["training"]
    root = config
    while "init" in root:
        root = root["init"]
    model = config["model"]
    params = sum(w.size for w in load_file(folder / "model.safetensors").values())
    horizons = tuple(h for h in task.horizons if f"open_loop/{h}/psnr" in fid)
    notes = "".join(f"- {note}\n" for note in data_notes)
    data = (_random_recipe(task, root["training"]) if loop is None else _loop_recipe(task, loop))[0]
    fine_tuned = loop is not None and _fine_tuned_after(loop, config)
    looped = config["init"] if fine_tuned else config  # the record of the loop's own run
    if loop is not None and "init" in looped:  # the loop's data came on top of its start model's
        start_model = looped["init"]
        steps = start_model["training"]["real_steps"]
        if start_loop is None:
            start = f"{steps:,} steps (its training split) of a uniform random policy: {_random_collection(task)}"
        else:
            start = f"{steps:,} steps (its training split), collected by its own `dreamsim loop`:\n  {_loop_data(start_loop)}"
        if "init" in start_model:  # that loop started from a model of its own
            random_steps = root["training"]["real_steps"]
            start += f";\n  on top of {random_steps:,} (a training split) of a uniform random policy: {_random_collection(task)}"
        data = f"- The loop's start model: {start}.\n{data}"
    if fine_tuned:  # the loop's data is the start model's; this model's own is the first bullet's (and the notes')
        data = "- The start model (`--init`), trained by `dreamsim loop`, had:\n" + textwrap.indent(data, "  ")
    first_state = "from the first observation" if model.get("deter_from_obs") else "zeros (an older checkpoint)"
    frame = "blends with the real start frame" if model.get("frame_reference") else "draws from the latent alone"
    missed = "".join(f"\n{textwrap.fill(note, 105, break_on_hyphens=False)}\n" for note in fidelity_notes)
    return f"""# DreamSim model card: {task.title} ({task.gym_id})

World model behind `DreamSim/{task.title}-v0`{" and `DreamSim-v0`" if task.name == "reacher" else ""}.

## Model
- Preset `{config["preset"]}`: RSSM with GRU state {model["deter"]}, {model["stoch"]} categoricals x {model["classes"]} classes,
  {model["ensemble"]} prior heads (disagreement = uncertainty), CNN depth {model["cnn_depth"]}, MLP width {model["hidden"]};
  {params:,} parameters (safetensors, float32).
- Inputs: {task.frame_size}x{task.frame_size} frame + {model["state_dim"]}-d state; actions {model["action_dim"]}-d;
  heads: frame, state, reward, continue. First GRU state: {first_state}.
  Frame decoder: {frame}.

## Data
- {training["real_steps"]:,} real steps in {training["episodes"]} training episodes of `{task.gym_id}`; about one
  collected episode in ten held out from training.{_repeat_note(task)}
{data}{notes}- Start states shipped: `start_states.npz` (real reset observations with their MuJoCo qpos/qvel).

## Training
{_training(task, config, loop, start_loop)}
## Fidelity on held-out real episodes
{fid["episodes"]} episodes ({fid["real_steps"]:,} steps) collected separately with another seed
(`dreamsim collect {task.name} --steps 5000 --seed 2 --out episodes/{task.name}-heldout`), scored by
`dreamsim validate {task.name} --episodes episodes/{task.name}-heldout` (numbers in `fidelity.json`):

{fidelity_table(fid, horizons)}

One-step: the model filters the real observations up to t and predicts t+1; the baseline copies the
observation at t. From one observation: the same, but the model sees the observation at t alone
(any t, mid-episode too), as when an imagined episode starts from a given real state. Open-loop h:
from the episode's first real observation the model rolls the episode's actions alone; the
baseline copies the first observation. State error: RMS over the state's dimensions, each in units
of its standard deviation in the training data.
{missed}{"" if loop is None else chr(10) + _loop_table(loop, fine_tuned)}"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="checkpoint folder holding config.json and fidelity.json")
    parser.add_argument("--data-note", action="append", default=[], help="an extra bullet for the Data section")
    parser.add_argument(
        "--fidelity-note", action="append", default=[], help="a paragraph under the fidelity table: what its numbers miss"
    )
    parser.add_argument("--loop", type=Path, help="loop.json of the `dreamsim loop` run that trained the model")
    parser.add_argument(
        "--start-loop", type=Path, help="with --loop, for a loop run with --init: loop.json of the loop behind its start model"
    )
    args = parser.parse_args()
    if args.start_loop and not args.loop:
        parser.error("--start-loop describes where a loop's start model came from: pass the model's own --loop too")
    loop, start_loop = (json.loads(path.read_text()) if path else None for path in (args.loop, args.start_loop))
    text = card(args.folder, tuple(args.data_note), loop, tuple(args.fidelity_note), start_loop)
    write_text(args.folder / "MODEL_CARD.md", text)
    print(f"wrote {args.folder / 'MODEL_CARD.md'}")
