import json

import numpy as np
import pytest
from synthetic import SIZE, dot_episode

from dreamsim.data import EpisodeStore
from dreamsim.model import load_checkpoint
from dreamsim.tasks import Camera, Task
from dreamsim.training import TrainConfig, train


def test_train_writes_a_loadable_checkpoint_and_tensorboard(tiny_run):
    ckpt = load_checkpoint(tiny_run / "checkpoint", task="reacher")
    config = json.loads((tiny_run / "checkpoint" / "config.json").read_text())
    assert config["training"]["steps"] == 4 and config["preset"] == "tiny"
    assert ckpt.start_states["frames"].shape[1:] == (64, 64, 3)
    assert list((tiny_run / "tb").glob("events.out.tfevents.*"))


def test_resume_continues_from_the_saved_step(reacher_episodes, tmp_path):
    cfg = TrainConfig(steps=2, batch_size=2, seq_len=4, preset="tiny", eval_every=100, eval_episodes=1)
    train("reacher", reacher_episodes, tmp_path, cfg)
    with pytest.raises(FileExistsError, match="--resume"):
        train("reacher", reacher_episodes, tmp_path, cfg)
    metrics = train("reacher", reacher_episodes, tmp_path, TrainConfig(**{**cfg.__dict__, "steps": 5}), resume=True)
    assert metrics["step"] == 5
    config = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert config["training"]["steps"] == 5


def test_resume_without_a_checkpoint(reacher_episodes, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train("reacher", reacher_episodes, tmp_path, resume=True)


def test_model_learns_a_known_world_better_than_copying_the_last_frame(tmp_path):
    """The synthetic square world: a few hundred CPU steps must beat copy-last clearly."""
    rng = np.random.default_rng(0)
    store = EpisodeStore(tmp_path / "episodes")
    for _ in range(44):
        store.write(dot_episode(rng))
    task = Task(
        name="dot", title="Dot", gym_id="none", frame_size=SIZE, action_repeat=1, episode_length=20,
        model_preset="tiny", camera=Camera(1.0, 0.0, 0.0, (0.0, 0.0, 0.0)), horizons=(1, 5),
    )  # fmt: skip
    cfg = TrainConfig(steps=200, batch_size=16, seq_len=10, lr=3e-3, eval_every=200, checkpoint_every=200)
    metrics = train(task, store.root, tmp_path / "run", cfg)
    assert metrics["val/one_step/state_error"] < 0.25 * metrics["val/one_step/state_error_copy_last"]
    assert metrics["val/one_step/psnr"] > metrics["val/one_step/psnr_copy_last"] + 3.0


def test_ctrl_c_leaves_a_clean_checkpoint(reacher_episodes, tmp_path, monkeypatch):
    from dreamsim.data import SequenceSampler

    real_sample, calls = SequenceSampler.sample, []

    def interrupt_on_third(self, batch, length):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_sample(self, batch, length)

    monkeypatch.setattr(SequenceSampler, "sample", interrupt_on_third)
    cfg = TrainConfig(steps=50, batch_size=2, seq_len=4, preset="tiny", eval_every=100, eval_episodes=1)
    metrics = train("reacher", reacher_episodes, tmp_path, cfg)
    assert metrics["interrupted"] and metrics["step"] == 2
    assert load_checkpoint(tmp_path / "checkpoint").config["training"]["steps"] == 2
    assert not list(tmp_path.glob(".checkpoint*")), "no temporary folders left behind"
