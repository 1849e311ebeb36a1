"""benchmarks/model_card.py: the card states what its files say, for `train` and `loop` models."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from dreamsim.tasks import load_task

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_card():
    spec = importlib.util.spec_from_file_location("model_card", ROOT / "benchmarks" / "model_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def folder(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    out = tmp_path / "reacher"
    shutil.copytree(tiny_checkpoint, out)
    fid = {"episodes": 3, "real_steps": 150}
    for key in ["one_step"] + [f"open_loop/{h}" for h in load_task("reacher").horizons]:
        fid |= {
            f"{key}/psnr": 21.5,
            f"{key}/psnr_copy_last": 19.25,
            f"{key}/state_error": 0.5,
            f"{key}/state_error_copy_last": 0.75,
        }
    (out / "fidelity.json").write_text(json.dumps(fid))
    return out


def test_card_of_a_train_model_names_its_recipe(model_card, folder: Path):
    text = model_card.card(folder)
    steps = json.loads((folder / "config.json").read_text())["training"]["steps"]
    assert f"`dreamsim train reacher --steps {steps}" in text
    assert "Uniform random policy" in text and "| open-loop h=50 | 21.50 | 19.25 | 0.500 | 0.750 |" in text
    assert "The loop's agent" not in text
    assert "First GRU state: from the first observation." in text  # every preset has it
    assert "spans" not in text  # reacher repeats no action: a real step is one Reacher-v5 step
    noted = model_card.card(folder, fidelity_notes=("The frames lack the body.",))
    assert noted.endswith("training data.\n\nThe frames lack the body.\n") and noted.startswith(text[:-1])


def test_card_says_what_a_real_step_spans_where_actions_repeat(model_card):
    assert model_card._repeat_note(load_task("reacher")) == ""
    assert "spans 2 `Hopper-v5` steps" in model_card._repeat_note(load_task("hopper"))


def test_card_of_a_stopped_run_names_the_steps_it_holds(model_card, folder: Path):
    config = json.loads((folder / "config.json").read_text())
    held = config["training"]["steps"]
    config["training"]["config"] |= {"steps": held + 1000, "batch_size": 32, "open_loop_steps": 6}
    (folder / "config.json").write_text(json.dumps(config))
    text = model_card.card(folder)
    assert f"Stopped after {held:,} of {held + 1000:,} planned steps" in text
    assert f"`dreamsim train reacher --steps {held} --lr" in text and " --batch-size 32 --seq-len 8 --open-loop-steps 6`" in text


def _loop() -> dict:
    """A two-iteration `loop.json`."""
    history = [
        {
            "iteration": 0,
            "real_steps": 1000,
            "model_steps": 10,
            "dream_steps": 500,
            "return_mean": -30.0,
            "return_ci95": 2.0,
            "random_return_mean": -40.0,
        },
        {
            "iteration": 1,
            "real_steps": 1500,
            "model_steps": 20,
            "dream_steps": 1000,
            "return_mean": -12.5,
            "return_ci95": 1.5,
            "random_return_mean": -41.0,
        },
    ]
    train = {"steps": 10, "lr": 0.001}
    config = {
        "initial_steps": 1000,
        "collect_steps": 500,
        "agent_steps": 500,
        "noise": 0.1,
        "algo": "sac",
        "eval_episodes": 5,
        "seed": 3,
        "train": train,
    }
    return {"task": "reacher", "history": history, "config": config}


def test_card_of_a_loop_model_names_the_loop_and_its_returns(model_card, folder: Path):
    text = model_card.card(folder, loop=_loop())
    assert "dreamsim loop reacher --iterations 2 --initial-steps 1000 --collect-steps 500" in text
    assert "--model-steps 10 --agent-steps 500 --eval-episodes 5 --lr 0.001 --seed 3" in text
    assert "Uniform random policy" not in text and "dreamsim train" not in text
    assert "| 1 | 1,500 | 20 | 1,000 | -12.5 ± 1.5 | -41.0 |" in text
    # Iteration 0 collects at random, so the agent collected in one iteration of the two.
    assert "1,000 steps of a uniform random policy, then\n  500 steps in iteration 1 by" in text


def test_card_of_a_tuned_decoder_names_the_tuning(model_card, folder: Path, reacher_episodes: Path, tmp_path: Path):
    from dreamsim.training import DecoderConfig, tune_decoder

    config = DecoderConfig(steps=2, batch_size=4, eval_episodes=1)
    record = tune_decoder("reacher", reacher_episodes, tmp_path / "run", config, checkpoint=folder)
    tuned = tmp_path / "run" / "checkpoint"
    shutil.copy(folder / "fidelity.json", tuned)
    text = model_card.card(tuned)
    assert "`dreamsim train reacher --steps" in text, "the training line stays"
    command = f"dreamsim tune-decoder reacher --checkpoint <the model above> --episodes {record['episode_folder']}"
    assert f"`{command} --steps 2 --lr 0.0003`" in text
    before, after = record["psnr_before"]["one_step/psnr"], record["psnr_after"]["one_step/psnr"]
    assert f"{before:.2f} -> {after:.2f} dB" in text


def test_card_of_a_model_trained_on_from_another_lists_both_runs(model_card, folder, reacher_episodes, tmp_path):
    from dreamsim.training import TrainConfig, train

    config = TrainConfig(steps=2, batch_size=2, seq_len=5, eval_every=100, eval_episodes=1, init=str(folder))
    train("reacher", reacher_episodes, tmp_path / "run", config)
    tuned = tmp_path / "run" / "checkpoint"
    shutil.copy(folder / "fidelity.json", tuned)
    text = model_card.card(tuned)
    first = json.loads((folder / "config.json").read_text())["training"]["steps"]
    then = "`dreamsim train reacher --init <the model above> --steps 2 --lr 0.0006 --batch-size 2 --seq-len 5`"
    later = text.index(f"Then the whole model, from the model above:\n  {then}")
    assert text.index(f"`dreamsim train reacher --steps {first}") < later
    assert text.count("Uniform random policy") == 1


def test_card_of_a_loop_from_another_model_lists_both(model_card, folder, reacher_episodes, tmp_path):
    from dreamsim.training import TrainConfig, train

    config = TrainConfig(steps=2, batch_size=2, seq_len=5, eval_every=100, eval_episodes=1, init=str(folder))
    train("reacher", reacher_episodes, tmp_path / "run", config)  # as `dreamsim loop --init` trains it
    started = tmp_path / "run" / "checkpoint"
    shutil.copy(folder / "fidelity.json", started)
    text = model_card.card(started, loop=_loop())
    first = json.loads((folder / "config.json").read_text())["training"]
    data, training = text.index("## Data"), text.index("## Training")
    assert text.index(f"The loop's start model: {first['real_steps']:,} steps", data) < text.index("Collected by `dreamsim loop`")
    assert text.index(f"`dreamsim train reacher --steps {first['steps']}", training) < text.index(
        "Then, from the model above, `dreamsim loop reacher --iterations 2"
    )
    assert "--seed 3 --init <the model above>`" in text and "dreamsim train reacher --init" not in text


def test_card_of_a_loop_from_a_loop_model_describes_the_first_loop(model_card, folder, reacher_episodes, tmp_path):
    from dreamsim.training import TrainConfig, train

    config = TrainConfig(steps=2, batch_size=2, seq_len=5, eval_every=100, eval_episodes=1, init=str(folder))
    train("reacher", reacher_episodes, tmp_path / "run", config)
    started = tmp_path / "run" / "checkpoint"
    shutil.copy(folder / "fidelity.json", started)
    first_loop = _loop()
    first_loop["config"] |= {"initial_steps": 4000, "seed": 7}
    text = model_card.card(started, loop=_loop(), start_loop=first_loop)
    data, training = text.index("## Data"), text.index("## Training")
    start = text.index("The loop's start model:", data)
    assert text.index("collected by its own `dreamsim loop`:\n  4,000 steps of a uniform random policy", start) < training
    assert "Uniform random policy" not in text and "dreamsim train" not in text
    first = text.index("`dreamsim loop reacher --iterations 2 --initial-steps 4000", training)
    assert first < text.index("Then, from the model above, `dreamsim loop reacher --iterations 2 --initial-steps 1000")


def test_card_of_a_loop_from_a_loop_that_began_from_a_train_model_lists_all_three(model_card, folder, reacher_episodes, tmp_path):
    from dreamsim.training import TrainConfig, train

    first, last = tmp_path / "first", tmp_path / "second" / "checkpoint"
    for start, out in ((folder, first), (first / "checkpoint", last.parent)):  # each as `dreamsim loop --init` trains it
        config = TrainConfig(steps=2, batch_size=2, seq_len=5, eval_every=100, eval_episodes=1, init=str(start))
        train("reacher", reacher_episodes, out, config)
    shutil.copy(folder / "fidelity.json", last)
    first_loop, loop = _loop(), _loop()
    first_loop["config"] |= {"initial_steps": 4000, "seed": 7}
    loop["config"] |= {"rollout_length": 5}
    text = model_card.card(last, loop=loop, start_loop=first_loop)
    random_steps = json.loads((folder / "config.json").read_text())["training"]["real_steps"]
    data, training = text.index("## Data"), text.index("## Training")
    start = text.index("The loop's start model:", data)
    assert text.index("collected by its own `dreamsim loop`:\n  4,000 steps", start) < training
    assert text.index(f"on top of {random_steps:,} (a training split) of a uniform random policy", start) < training
    assert text.index("`dreamsim train reacher --steps", training) < text.index("--initial-steps 4000", training)
    assert text.index("--initial-steps 4000", training) < text.index("--initial-steps 1000", training)
    assert "--seed 3 --rollout-length 5 --init <the model above>`" in text and "--seed 7 --rollout-length" not in text


def test_card_of_a_model_trained_on_from_a_loop_model_lists_the_loop_then_the_run(model_card, folder, reacher_episodes, tmp_path):
    from dreamsim.training import TrainConfig, train

    looped, last = tmp_path / "looped", tmp_path / "tuned" / "checkpoint"
    for start, out, steps in ((folder, looped, 2), (looped / "checkpoint", last.parent, 3)):  # a loop's run, then `train --init`
        config = TrainConfig(steps=steps, batch_size=2, seq_len=5, eval_every=100, eval_episodes=1, init=str(start))
        train("reacher", reacher_episodes, out, config)
    shutil.copy(folder / "fidelity.json", last)
    loop = _loop()
    loop["history"][-1]["model_steps"] = 2  # the loop's model is the start model
    text = model_card.card(last, loop=loop)
    random_steps = json.loads((folder / "config.json").read_text())["training"]["real_steps"]
    data, training = text.index("## Data"), text.index("## Training")
    nested = text.index("- The start model (`--init`), trained by `dreamsim loop`, had:\n  - The loop's start model: ", data)
    assert nested < text.index(f"The loop's start model: {random_steps:,} steps (its training split)", data) < training
    looped_at = text.index("Then, from the model above, `dreamsim loop reacher")
    assert text.index("`dreamsim train reacher --steps", training) < looped_at
    then = "Then the whole model, from the model above:\n  `dreamsim train reacher --init <the model above> --steps 3"
    assert text.index("--seed 3 --init <the model above>`", training) < text.index(then)
    table = text.index("## The start model's loop: its agent, scored in MuJoCo")
    assert table < text.index("| 1 | 1,500 | 2 | 1,000 | -12.5 ± 1.5 | -41.0 |")
