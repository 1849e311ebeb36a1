import json

import numpy as np
import pytest
import torch

from dreamsim.data import EpisodeStore
from dreamsim.model import load_checkpoint
from dreamsim.training import TrainConfig, train
from dreamsim.training.evaluation import fidelity, psnr


def test_train_writes_a_loadable_checkpoint_and_tensorboard(tiny_run, tensorboard_tags):
    ckpt = load_checkpoint(tiny_run / "checkpoint", task="reacher")
    config = json.loads((tiny_run / "checkpoint" / "config.json").read_text())
    assert config["training"]["steps"] == 4 and config["preset"] == "tiny"
    assert ckpt.start_states["frames"].shape[1:] == (64, 64, 3)
    tags = tensorboard_tags(tiny_run / "tb")  # what the README promises there
    assert {"loss/frame", "loss/kl_dynamics", "kl/value", "grad_norm", "val/one_step/psnr", "val/open_loop/1/state_error"} <= tags
    assert {"val/reconstruction", "val/open_loop"} <= tags


def test_open_loop_steps_train_and_reach_tensorboard_and_the_record(reacher_episodes, tmp_path, tensorboard_tags):
    cfg = TrainConfig(
        steps=2, batch_size=2, seq_len=6, preset="tiny", eval_every=100, eval_episodes=1, log_every=1, open_loop_steps=3
    )
    train("reacher", reacher_episodes, tmp_path, cfg)
    assert {"loss/open_loop_state", "loss/open_loop_reward"} <= tensorboard_tags(tmp_path / "tb")
    config = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert config["training"]["config"]["open_loop_steps"] == 3


def test_resume_continues_from_the_saved_step(reacher_episodes, tmp_path):
    cfg = TrainConfig(steps=2, batch_size=2, seq_len=4, preset="tiny", eval_every=100, eval_episodes=1)
    train("reacher", reacher_episodes, tmp_path, cfg)
    with pytest.raises(FileExistsError, match="--resume"):
        train("reacher", reacher_episodes, tmp_path, cfg)
    # A checkpoint set aside by a save killed between its two renames still counts as one.
    (tmp_path / "checkpoint").rename(tmp_path / ".checkpoint.old")
    with pytest.raises(FileExistsError, match="--resume"):
        train("reacher", reacher_episodes, tmp_path, cfg)
    saved = load_checkpoint(tmp_path / "checkpoint").model.state_dict()
    metrics = train("reacher", reacher_episodes, tmp_path, TrainConfig(**{**cfg.__dict__, "steps": 5, "lr": 1e-5}), resume=True)
    assert metrics["step"] == 5
    # Three Adam steps at lr 1e-5 move a weight by about 3e-5: the saved weights went on training.
    resumed = load_checkpoint(tmp_path / "checkpoint").model.state_dict()
    for name, weight in resumed.items():
        assert torch.allclose(weight, saved[name], atol=1e-4), name
    assert any(not torch.equal(weight, saved[name]) for name, weight in resumed.items())
    config = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert config["training"]["steps"] == 5 and config["training"]["config"]["lr"] == 1e-5
    with pytest.raises(ValueError, match="trained with preset 'tiny': resume it without --preset small"):
        train("reacher", reacher_episodes, tmp_path, TrainConfig(**{**cfg.__dict__, "steps": 9, "preset": "small"}), resume=True)
    # The resumed steps ran at the rate asked for, not the one saved with the optimizer state.
    trainer_json = tmp_path / "checkpoint" / "trainer.json"
    assert {g["lr"] for g in json.loads(trainer_json.read_text())["param_groups"]} == {1e-5}
    trainer_json.write_text(json.dumps({k: v for k, v in json.loads(trainer_json.read_text()).items() if k != "step"}))
    with pytest.raises(ValueError, match=r"corrupted \(trainer.json lacks \['step'\]\)"):
        train("reacher", reacher_episodes, tmp_path, TrainConfig(**{**cfg.__dict__, "steps": 9}), resume=True)


def test_init_starts_from_a_checkpoint_and_keeps_its_record(tiny_checkpoint, reacher_episodes, tmp_path):
    source = load_checkpoint(tiny_checkpoint)
    # At lr 1e-9 each Adam step moves a weight by about 1e-9: what was loaded is what is saved.
    cfg = TrainConfig(steps=2, batch_size=2, seq_len=4, lr=1e-9, eval_every=100, eval_episodes=1, init=str(tiny_checkpoint))
    train("reacher", reacher_episodes, tmp_path, cfg)
    tuned = load_checkpoint(tmp_path / "checkpoint")
    for name, weight in source.model.state_dict().items():
        assert torch.allclose(tuned.model.state_dict()[name], weight, atol=1e-6), name
    assert tuned.config["preset"] == "tiny"
    assert tuned.config["init"]["training"]["steps"] == 4 and tuned.config["training"]["steps"] == 2
    # Resumed, the run still says where it started.
    train("reacher", reacher_episodes, tmp_path, TrainConfig(**{**cfg.__dict__, "steps": 3, "init": None}), resume=True)
    resumed = load_checkpoint(tmp_path / "checkpoint").config
    assert resumed["init"] == tuned.config["init"] and resumed["training"]["steps"] == 3
    with pytest.raises(ValueError, match="pass one of them"):
        train("reacher", reacher_episodes, tmp_path, cfg, resume=True)


def test_bad_settings_fail_before_any_work(reacher_episodes, tmp_path):
    for bad in ({"steps": 0}, {"batch_size": 0}, {"eval_every": 0}, {"checkpoint_every": 0}):
        with pytest.raises(ValueError, match="must be at least 1"):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match="lr must be positive"):
        TrainConfig(lr=0.0)
    with pytest.raises(ValueError, match="lengthen --seq-len or shorten --open-loop-steps"):
        TrainConfig(seq_len=8, open_loop_steps=8)
    with pytest.raises(ValueError, match="open_loop_steps must be from 0"):
        TrainConfig(open_loop_steps=-1)
    with pytest.raises(ValueError, match="--preset sets new ones"):
        TrainConfig(init="assets/reacher", preset="tiny")


def test_resume_without_a_checkpoint(reacher_episodes, tmp_path):
    import shutil

    from dreamsim.resources import assets_dir

    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train("reacher", reacher_episodes, tmp_path, resume=True)
    shutil.copytree(assets_dir() / "reacher", tmp_path / "checkpoint")  # a model without training state
    with pytest.raises(FileNotFoundError, match="no training state to resume .*start a new run from it with --init"):
        train("reacher", reacher_episodes, tmp_path, resume=True)


def test_model_learns_a_known_world_better_than_copying_the_last_frame(dot_run):
    """The synthetic square world: a few hundred CPU steps must beat copy-last clearly."""
    _, metrics = dot_run
    assert metrics["val/one_step/state_error"] < 0.25 * metrics["val/one_step/state_error_copy_last"]
    assert metrics["val/one_step/psnr"] > metrics["val/one_step/psnr_copy_last"] + 3.0
    # The square goes where the action says, so one observation is as good a start as any history.
    assert metrics["val/cold_start/state_error"] < 0.25 * metrics["val/one_step/state_error_copy_last"]


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
    with pytest.raises(KeyboardInterrupt):  # raised on after the save, so callers stop too
        train("reacher", reacher_episodes, tmp_path, cfg)
    assert load_checkpoint(tmp_path / "checkpoint").config["training"]["steps"] == 2
    assert not list(tmp_path.glob(".checkpoint*")), "no temporary folders left behind"


def test_one_step_fidelity_scores_every_step_of_every_episode(tiny_checkpoint, reacher_episodes):
    """Horizons stop the open loop, not the one-step views: these run to each episode's end."""
    model = load_checkpoint(tiny_checkpoint).model
    episodes = list(EpisodeStore(reacher_episodes).episodes())[:3]
    result = fidelity(model, episodes, horizons=(1, 5))
    frames = torch.as_tensor(np.concatenate([e.frames for e in episodes]))
    last = np.cumsum([len(e) + 1 for e in episodes]) - 1  # no transition out of an episode's last frame
    pairs = np.setdiff1d(np.arange(len(frames) - 1), last)
    expected = float(psnr(frames[pairs], frames[pairs + 1]).mean())
    assert result["one_step/psnr_copy_last"] == pytest.approx(expected, rel=1e-5)
    assert {"open_loop/1/psnr", "open_loop/5/psnr", "cold_start/psnr"} <= set(result)
    with pytest.raises(ValueError, match=r"no horizon in \(500,\) fits the longest held-out episode \(50 steps\)"):
        fidelity(model, episodes, horizons=(500,))
