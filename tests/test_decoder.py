"""Refitting the frame decoder alone (`dreamsim tune-decoder`)."""

import json

import pytest
import torch
from safetensors.torch import load_file
from synthetic import DOT_TASK

from dreamsim.cli import main
from dreamsim.model import load_checkpoint
from dreamsim.model.checkpoint import save_checkpoint
from dreamsim.model.networks import FrameDecoder
from dreamsim.training import DecoderConfig, tune_decoder


def test_tuning_restores_a_wiped_decoder_and_changes_nothing_else(dot_run, tmp_path):
    """Known answer: a freshly initialised decoder on a trained model of the square world draws
    noise; trained on the frozen latents it must draw the square again, better than copying the last
    frame, while every other weight stays bit for bit what it was."""
    trained, _ = dot_run
    source = load_checkpoint(trained)
    cfg = source.model.cfg
    torch.manual_seed(1)
    source.model.frame_decoder.load_state_dict(FrameDecoder(cfg.latent_dim, cfg.frame_size, cfg.cnn_depth).state_dict())
    info = {k: v for k, v in source.config.items() if k not in ("format", "format_version", "task", "model")}
    wiped = save_checkpoint(tmp_path / "wiped", source.model, "dot", source.start_states, info)

    episodes = trained.parent.parent / "episodes"
    record = tune_decoder(DOT_TASK, episodes, tmp_path / "run", DecoderConfig(steps=500, batch_size=64, lr=1e-3), wiped)

    before, after = record["psnr_before"], record["psnr_after"]
    assert after["one_step/psnr"] > before["one_step/psnr"] + 5.0
    assert after["one_step/psnr"] > after["one_step/psnr_copy_last"] + 3.0, after
    old, new = load_file(str(wiped / "model.safetensors")), load_file(str(tmp_path / "run/checkpoint/model.safetensors"))
    assert old.keys() == new.keys()
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed and all(k.startswith("frame_decoder.") for k in changed), changed
    config = json.loads((tmp_path / "run/checkpoint/config.json").read_text())
    assert config["training"] == info["training"], "the training record is kept"
    assert [r["steps"] for r in config["decoder_tuning"]] == [500]
    assert list((tmp_path / "run/tb").glob("events.out.tfevents.*"))


def test_bad_input_fails_before_anything_is_written(tiny_checkpoint, reacher_episodes, tmp_path):
    for bad in ({"steps": 0}, {"batch_size": 0}, {"lr": 0.0}):
        with pytest.raises(ValueError, match="at least 1|positive"):
            DecoderConfig(**bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="dreamsim collect reacher"):
        tune_decoder("reacher", tmp_path / "empty", tmp_path / "run", checkpoint=tiny_checkpoint)
    with pytest.raises(ValueError, match="trained for task 'reacher'"):
        tune_decoder(DOT_TASK, reacher_episodes, tmp_path / "run", checkpoint=tiny_checkpoint)
    assert not (tmp_path / "run").exists()


def test_tune_decoder_from_the_command_line(tiny_checkpoint, reacher_episodes, tmp_path, capsys):
    args = ["tune-decoder", "reacher", "--checkpoint", str(tiny_checkpoint), "--episodes", str(reacher_episodes)]
    args += ["--out", str(tmp_path / "run"), "--steps", "3", "--batch-size", "8", "--eval-episodes", "1"]
    assert main(args) == 0
    assert '"psnr_after"' in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "run/checkpoint", task="reacher").config["decoder_tuning"][0]["steps"] == 3
    assert main(args) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err


def test_ctrl_c_writes_the_decoder_so_far(tiny_checkpoint, reacher_episodes, tmp_path, monkeypatch):
    from tqdm.auto import tqdm

    real_update, calls = tqdm.update, []

    def interrupt_on_third(self, n=1):
        calls.append(n)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_update(self, n)

    monkeypatch.setattr(tqdm, "update", interrupt_on_third)
    config = DecoderConfig(steps=50, batch_size=4, eval_episodes=1)
    record = tune_decoder("reacher", reacher_episodes, tmp_path / "run", config, checkpoint=tiny_checkpoint)
    assert record["interrupted"] and record["steps"] == 3
    assert load_checkpoint(tmp_path / "run/checkpoint").config["decoder_tuning"][-1]["steps"] == 3
    assert not list((tmp_path / "run").glob(".checkpoint*")), "no temporary folders left behind"
