"""Refitting the frame decoder alone (`dreamsim tune-decoder`)."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from synthetic import DOT_TASK

from dreamsim.cli import main
from dreamsim.model import load_checkpoint
from dreamsim.model.checkpoint import save_checkpoint
from dreamsim.model.networks import FrameDecoder
from dreamsim.training import DecoderConfig, tune_decoder


def test_tuning_restores_a_wiped_decoder_and_changes_nothing_else(dot_run, tmp_path, tensorboard_tags):
    """Known answer: a freshly initialised decoder on a trained model of the square world draws
    noise; trained on the frozen latents it must draw the square again, better than copying the last
    frame, while every other weight stays bit for bit what it was."""
    trained, _ = dot_run
    source = load_checkpoint(trained)
    cfg = source.model.cfg
    torch.manual_seed(1)
    fresh = FrameDecoder(cfg.latent_dim, cfg.frame_size, cfg.cnn_depth, cfg.frame_reference)
    source.model.frame_decoder.load_state_dict(fresh.state_dict())
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
    assert {"loss/frame", "val/one_step/psnr", "val/open_loop/1/psnr"} <= tensorboard_tags(tmp_path / "run/tb")


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
    with pytest.raises(KeyboardInterrupt):  # raised on after the save, so callers stop too
        tune_decoder("reacher", reacher_episodes, tmp_path / "run", config, checkpoint=tiny_checkpoint)
    assert load_checkpoint(tmp_path / "run/checkpoint").config["decoder_tuning"][-1]["steps"] == 3
    assert not list((tmp_path / "run").glob(".checkpoint*")), "no temporary folders left behind"


def _textured_store(root, count=44):
    """Square-world episodes, each over a background of its own random texture: nothing the state
    says, and too much for a tiny latent to carry, but the same in every frame of an episode."""
    import numpy as np
    from synthetic import dot_episode

    from dreamsim.data.store import EpisodeStore

    rng = np.random.default_rng(1)
    store = EpisodeStore(root)
    for i in range(count):
        ep = dot_episode(rng)
        texture = rng.integers(0, 120, ep.frames.shape[1:], dtype=np.uint8)
        background = (ep.frames == 40).all(-1, keepdims=True)
        ep.frames[:] = np.where(background, texture, ep.frames)
        store.write(ep).rename(store.root / f"{i:03d}-20.npz")
    return store.root


def _without_reference(checkpoint, out):
    """``checkpoint`` with a freshly initialised decoder that draws from the latent alone."""
    from dreamsim.model import WorldModel

    source = load_checkpoint(checkpoint)
    plain = WorldModel(replace(source.model.cfg, frame_reference=False))
    weights = {k: v for k, v in source.model.state_dict().items() if not k.startswith("frame_decoder.")}
    missing, _ = plain.load_state_dict(weights, strict=False)
    assert all(k.startswith("frame_decoder.") for k in missing)
    info = {k: v for k, v in source.config.items() if k not in ("format", "format_version", "task", "model")}
    return save_checkpoint(out, plain, "dot", source.start_states, info)


def test_a_reference_decoder_copies_what_stayed_still(dot_run, tmp_path):
    """Known answer: over a per-episode random background, a decoder that draws from the latent alone
    can only blur it, while one that blends with the episode's real frame copies the background and
    draws the square where the latent puts it. Both are tuned from the same model, whose decoder drew
    from the latent alone; ``reference=True`` switches it to blending."""
    plain_ckpt = _without_reference(dot_run[0], tmp_path / "plain-model")
    episodes = _textured_store(tmp_path / "episodes")
    config = DecoderConfig(steps=500, batch_size=64, lr=1e-3)
    plain = tune_decoder(DOT_TASK, episodes, tmp_path / "plain", config, plain_ckpt)["psnr_after"]
    after = tune_decoder(DOT_TASK, episodes, tmp_path / "blend", replace(config, reference=True), plain_ckpt)["psnr_after"]
    assert after["one_step/psnr"] > plain["one_step/psnr"] + 3.0, (after, plain)
    assert after["open_loop/5/psnr"] > plain["open_loop/5/psnr"] + 3.0, (after, plain)
    assert after["one_step/psnr"] > after["one_step/psnr_copy_last"] + 3.0, after

    tuned = load_checkpoint(tmp_path / "blend/checkpoint")
    assert tuned.model.cfg.frame_reference and tuned.config["decoder_tuning"][-1]["config"]["reference"]
    old = load_file(str(plain_ckpt / "model.safetensors"))
    new = load_file(str(tmp_path / "blend/checkpoint/model.safetensors"))
    changed = {k for k in new if k not in old or not torch.equal(old[k], new[k])}
    assert changed <= {k for k in new if k.startswith("frame_decoder.")}
    assert {k for k in new if k not in old} == {k for k in new if k.startswith("frame_decoder.blend.")}


def test_a_reference_decoder_needs_its_reference(dot_run, tmp_path):
    from dreamsim.training.decoder import with_reference_decoder

    model = with_reference_decoder(load_checkpoint(dot_run[0]).model)
    feat = torch.zeros(2, model.cfg.latent_dim)
    with pytest.raises(ValueError, match="reference frame"):
        model.decode_frame(feat)
    frames = torch.zeros(2, 16, 16, 3, dtype=torch.uint8)
    assert model.decode_frame(feat, frames).shape == (2, 16, 16, 3)
