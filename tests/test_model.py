import json
import re

import numpy as np
import pytest
import torch

from dreamsim.model import WorldModel, load_checkpoint, preset, save_checkpoint
from dreamsim.resources import assets_dir
from dreamsim.sim.core import hash_uniform


def _batch(b=2, t=5, size=64, d=10, a=2):
    return {
        "frames": torch.randint(0, 256, (b, t, size, size, 3), dtype=torch.uint8),
        "obs": torch.randn(b, t, d),
        "actions": torch.rand(b, t, a) * 2 - 1,
        "rewards": torch.randn(b, t),
        "cont": torch.ones(b, t),
        "mask": torch.ones(b, t),
    }


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_presets_build_and_give_a_finite_loss(name):
    model = WorldModel(preset(name, 10, 2))
    loss, metrics = model.loss(_batch())
    loss.backward()
    assert torch.isfinite(loss)
    for key in ("frame", "state", "reward", "continue", "kl_dynamics", "kl_representation"):
        assert np.isfinite(metrics[f"loss/{key}"])


@pytest.mark.parametrize("open_loop_steps", [0, 3])
def test_padding_reaches_neither_the_loss_nor_its_metrics(open_loop_steps):
    model = WorldModel(preset("tiny", 10, 2))
    batch = _batch(t=8)
    batch["mask"][:, 5:] = 0
    padded = {k: v.clone() for k, v in batch.items()}
    padded["frames"][:, 5:] = 255 - padded["frames"][:, 5:]
    padded["obs"][:, 5:] += 3.0
    padded["actions"][:, 5:] *= -1
    padded["rewards"][:, 5:] += 7.0
    padded["cont"][:, 5:] = 1.0 - padded["cont"][:, 5:]
    padded["rewards"][:, 0] += 7.0  # step 0 has no incoming transition: its reward is no target either
    padded["cont"][:, 0] = 1.0 - padded["cont"][:, 0]
    results = []
    for b in (batch, padded):
        torch.manual_seed(0)
        results.append(model.loss(b, open_loop_steps))
    (loss, metrics), (loss2, metrics2) = results
    assert ("loss/open_loop_state" in metrics) == (open_loop_steps > 0)
    assert torch.equal(loss, loss2)
    for key, value in metrics.items():
        assert metrics2[key] == pytest.approx(value, rel=1e-6), key


def test_open_loop_loss_scores_imagined_rollouts_against_the_real_steps_they_reach():
    """A state far off at the window's last step is the target of the one rollout that reaches it, so
    the open-loop term grows by its share; the latents rollouts start from stay put."""
    model = WorldModel(preset("tiny", 10, 2))
    batch = _batch(t=8)
    metrics = []
    for offset in (0.0, 50.0):
        shifted = {k: v.clone() for k, v in batch.items()}
        shifted["obs"][:, 7] += offset
        torch.manual_seed(0)
        metrics.append(model.loss(shifted, open_loop_steps=3)[1])
    clean, far = metrics
    # Rollouts start at steps 0 to 4 and run 3 steps: 15 scored steps, of which only step 4's third
    # reaches step 7, its 10 dims each ~50 off.
    assert far["loss/open_loop_state"] == pytest.approx(clean["loss/open_loop_state"] + 10 * 50**2 / 15, rel=0.05)
    with pytest.raises(ValueError, match="window length - 1 = 7, got 8"):
        model.loss(batch, open_loop_steps=8)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        preset("huge", 10, 2)


def test_open_loop_shapes():
    model = WorldModel(preset("tiny", 10, 2)).eval()
    b = _batch(b=3, t=1)
    out = model.open_loop(b["frames"][:, 0], b["obs"][:, 0], torch.zeros(3, 7, 2))
    assert out["states"].shape == (3, 7, 10) and out["rewards"].shape == (3, 7)
    assert out["frames"].shape == (3, 7, 64, 64, 3) and out["frames"].dtype == torch.uint8


def test_first_gru_state_comes_from_the_observation_unless_the_config_predates_it():
    from dataclasses import replace

    from dreamsim.model import ModelConfig

    b = _batch(b=2, t=1)
    frames, obs = b["frames"][:, 0], b["obs"][:, 0] + torch.tensor([[0.0], [3.0]])  # two different states
    fresh = WorldModel(preset("tiny", 10, 2)).eval()
    deter, _ = fresh.initial(frames, obs)
    assert not torch.allclose(deter[0], deter[1])
    legacy_config = {k: v for k, v in preset("tiny", 10, 2).to_dict().items() if k != "deter_from_obs"}
    legacy = WorldModel(ModelConfig.from_dict(legacy_config)).eval()  # a checkpoint made before the option
    assert legacy.initial_deter is None and (legacy.initial(frames, obs)[0] == 0).all()
    assert WorldModel(replace(preset("tiny", 10, 2), deter_from_obs=False)).initial_deter is None


def test_hash_noise_depends_only_on_seed_and_step():
    seeds, t = torch.tensor([1, 2, 3]), torch.tensor([5, 5, 9])
    u = hash_uniform(seeds, t, (4, 4))
    assert u.shape == (3, 4, 4) and (u > 0).all() and (u < 1).all()
    torch.testing.assert_close(hash_uniform(seeds[1:2], t[1:2], (4, 4))[0], u[1])
    assert not torch.equal(u[0], u[1])


def _starts():
    return {
        "obs": np.zeros((2, 10), np.float32),
        "frames": np.zeros((2, 64, 64, 3), np.uint8),
        "qpos": np.zeros((2, 4)),
        "qvel": np.zeros((2, 4)),
    }


def test_checkpoint_round_trip(tmp_path):
    model = WorldModel(preset("tiny", 10, 2))
    save_checkpoint(tmp_path / "ckpt", model, "reacher", _starts())
    loaded = load_checkpoint(tmp_path / "ckpt", task="reacher")
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.model.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    assert not list(tmp_path.glob(".ckpt*")), "no temporary folders left behind"
    modes = {p.name: p.stat().st_mode & 0o777 for p in [tmp_path / "ckpt", *(tmp_path / "ckpt").iterdir()]}
    assert modes == {"ckpt": 0o755, **{p.name: 0o644 for p in (tmp_path / "ckpt").iterdir()}}  # readable by others


def test_a_checkpoint_set_aside_by_an_interrupted_save_is_put_back(tmp_path):
    """Killed between save_checkpoint's two renames, only the previous checkpoint (set aside) is left."""
    from dreamsim.model.checkpoint import has_training_state

    opt = torch.optim.Adam(WorldModel(preset("tiny", 10, 2)).parameters())
    path = save_checkpoint(tmp_path / "ckpt", WorldModel(preset("tiny", 10, 2)), "reacher", _starts(), optimizer=opt)
    path.rename(tmp_path / ".ckpt.old")
    assert has_training_state(path) and not (tmp_path / ".ckpt.old").exists()
    path.rename(tmp_path / ".ckpt.old")
    assert load_checkpoint(path, task="reacher").model.cfg.deter == 32


def test_bad_checkpoints_say_what_is_wrong(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "ckpt", WorldModel(preset("tiny", 10, 2)), "reacher", _starts())
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")
    monkeypatch.chdir(tmp_path)  # a relative path from elsewhere than the project root
    shipped = re.escape(str(assets_dir()))
    with pytest.raises(FileNotFoundError, match=f"relative to {re.escape(str(tmp_path))}.*shipped ones are in {shipped}"):
        load_checkpoint("assets/reacher")
    with pytest.raises(ValueError, match="trained for task 'reacher', not 'hopper'"):
        load_checkpoint(path, task="hopper")

    config = json.loads((path / "config.json").read_text())
    config["model"]["deter"] = 64  # weights say 32
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="do not match its config"):
        load_checkpoint(path)

    del config["task"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="names no task"):
        load_checkpoint(path)
    config["task"] = "reacher"

    version, config["format_version"] = config["format_version"], 99
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="format_version 99"):
        load_checkpoint(path)
    config["format_version"] = version

    for deter in (-1, "256"):  # sizes no model can have: named, not a torch traceback
        (path / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "deter": deter}}))
        with pytest.raises(ValueError, match="has no valid 'model' section"):
            load_checkpoint(path)

    path = save_checkpoint(tmp_path / "ckpt2", WorldModel(preset("tiny", 10, 2)), "reacher", _starts())
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupted"):
        load_checkpoint(path)

    path = save_checkpoint(tmp_path / "ckpt3", WorldModel(preset("tiny", 10, 2)), "reacher", _starts())
    starts = path / "start_states.npz"
    starts.write_bytes(starts.read_bytes()[:-40])  # truncated: numpy raises zipfile's own error
    with pytest.raises(ValueError, match="start states .* are corrupted"):
        load_checkpoint(path)
