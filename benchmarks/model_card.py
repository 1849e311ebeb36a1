"""Write MODEL_CARD.md for a checkpoint folder from its config.json and fidelity.json.

    MUJOCO_GL=egl python benchmarks/fidelity.py --rescore reacher   # writes assets/reacher/fidelity.json
    python benchmarks/model_card.py assets/reacher

Every number in the card comes from those two files; the collection commands are the recipe the
shipped checkpoints were made with (the task card's step count, seed 1; held-out: seed 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.numpy import load_file

from dreamsim.tasks import load_task
from dreamsim.training import fidelity_table


def card(folder: Path, data_notes: tuple[str, ...] = ()) -> str:
    config = json.loads((folder / "config.json").read_text())
    fid = json.loads((folder / "fidelity.json").read_text())
    task = load_task(config["task"])
    training = config["training"]
    m = training.get("machine", {})
    machine = m.get("gpu") or f"{m.get('cpu_count', '?')}-core CPU, {m.get('platform', 'unknown platform')}"
    model = config["model"]
    params = sum(w.size for w in load_file(folder / "model.safetensors").values())
    horizons = tuple(h for h in task.horizons if f"open_loop/{h}/psnr" in fid)
    cfg = training["config"]
    notes = "".join(f"- {note}\n" for note in data_notes)
    return f"""# DreamSim model card: {task.title} ({task.gym_id})

World model behind `DreamSim/{task.title}-v0`{" and `DreamSim-v0`" if task.name == "reacher" else ""}.

## Model
- Preset `{config["preset"]}`: RSSM with GRU state {model["deter"]}, {model["stoch"]} categoricals x {model["classes"]} classes,
  {model["ensemble"]} prior heads (disagreement = uncertainty), CNN depth {model["cnn_depth"]}, MLP width {model["hidden"]};
  {params:,} parameters (safetensors, float32).
- Inputs: {task.frame_size}x{task.frame_size} frame + {model["state_dim"]}-d state; actions {model["action_dim"]}-d;
  heads: frame, state, reward, continue.

## Data
- {training["real_steps"]:,} real steps in {training["episodes"]} training episodes of `{task.gym_id}`; every 10th
  collected episode held out from training.
- Uniform random policy: `dreamsim collect {task.name} --steps {task.collect_steps} --workers 2 --seed 1`.
{notes}- Start states shipped: `start_states.npz` (real reset observations with their MuJoCo qpos/qvel).

## Training
- `dreamsim train {task.name} --steps {cfg["steps"]} --lr {cfg["lr"]}`: {training["steps"]:,} steps of batch {cfg["batch_size"]} x
  {cfg["seq_len"]}, Adam, {training["wall_time_s"] / 60:.0f} min of training time on `{training["device"]}` ({machine}).

## Fidelity on held-out real episodes
{fid["episodes"]} episodes ({fid["real_steps"]:,} steps) collected separately with another seed
(`dreamsim collect {task.name} --steps 5000 --seed 2 --out episodes/{task.name}-heldout`), scored by
`dreamsim validate {task.name} --episodes episodes/{task.name}-heldout` (numbers in `fidelity.json`):

{fidelity_table(fid, horizons)}

One-step: the model filters the real observations up to t and predicts t+1; the baseline copies the
observation at t. Open-loop h: from the episode's first real observation the model rolls the
episode's actions alone; the baseline copies the first observation. State error: RMS over the
state's dimensions, each in units of its standard deviation in the training data.
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="checkpoint folder holding config.json and fidelity.json")
    parser.add_argument("--data-note", action="append", default=[], help="an extra bullet for the Data section")
    args = parser.parse_args()
    (args.folder / "MODEL_CARD.md").write_text(card(args.folder, tuple(args.data_note)))
    print(f"wrote {args.folder / 'MODEL_CARD.md'}")
