"""Validation against MuJoCo: SSIM, matched-state restores, per-horizon curves, the transfer gap."""

import numpy as np
import pytest
import torch

from dreamsim.control import ConstantAgent, RandomAgent
from dreamsim.data.collect import run_episode
from dreamsim.planning.objectives import step_physics
from dreamsim.tasks import load_task, make_real
from dreamsim.training.evaluation import PSNR_MAX, psnr, ssim
from dreamsim.validation.checks import checks_markdown, describe, fidelity_checks, unchecked_horizons
from dreamsim.validation.demo import run_demo
from dreamsim.validation.matched import Rollout, _restorable_step, horizon_curves, matched_rollouts
from dreamsim.validation.report import ValidateConfig, validate
from dreamsim.validation.transfer import transfer_gap


def test_psnr_of_identical_frames_is_capped_not_infinite():
    a = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    b = a.clone()
    b[1, 0, 0, 0] ^= 1  # one grey level in one pixel: 10 log10(255² · 12288) = 89.0 dB
    assert psnr(a, b).tolist() == [PSNR_MAX, PSNR_MAX] == [60.0, 60.0]
    one_off = (a.int() + 1).clamp_max(255).to(torch.uint8)  # about one grey level everywhere: 48 dB
    assert 47.0 < float(psnr(one_off[0], a[0])) < 49.0


def test_ssim_matches_the_reference_implementation():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    noisier = np.clip(a.astype(int) + rng.integers(-120, 120, a.shape), 0, 255).astype(np.uint8)
    a_t, b_t = torch.as_tensor(a), torch.as_tensor(b)
    # scikit-image: structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
    # use_sample_covariance=False, data_range=255) gives 0.9540257.
    assert float(ssim(b_t, a_t)) == pytest.approx(0.9540257, abs=1e-5)
    assert float(ssim(a_t, a_t)) == pytest.approx(1.0)
    assert float(ssim(torch.as_tensor(noisier), a_t)) < float(ssim(b_t, a_t))
    assert ssim(torch.stack([a_t, b_t])[None], torch.stack([a_t, a_t])[None]).shape == (1, 2)
    with pytest.raises(ValueError, match="at least 11x11 pixels, got \\(10, 30\\)"):
        ssim(a_t[:10, :30], a_t[:10, :30])


def test_restoring_qpos_qvel_replays_the_recorded_episode():
    task = load_task("reacher")
    env = make_real(task)
    episode = run_episode(env, seed=5)
    raw, t0 = env.unwrapped, 17
    raw.set_state(episode.qpos[t0], episode.qvel[t0])
    for t in range(t0, t0 + 10):
        obs, reward, _ = step_physics(raw, episode.actions[t].astype(np.float64), task.action_repeat)
        np.testing.assert_allclose(obs, episode.obs[t + 1], atol=1e-6)
        assert reward == pytest.approx(episode.rewards[t], abs=1e-6)
    env.close()


def test_a_start_state_that_does_not_restore_gives_way_to_the_next_that_does():
    env = make_real(load_task("reacher"))
    episode, raw = run_episode(env, seed=5), env.unwrapped
    assert _restorable_step(raw, episode, 17, "Reacher-v5") == 17  # as the test above restored it
    episode.obs[17:19] += 0.01  # as if Gymnasium had recorded these two off the restored state
    assert _restorable_step(raw, episode, 17, "Reacher-v5") == 19
    episode.obs[len(episode) - 1] += 0.01  # the last step it went on from
    assert _restorable_step(raw, episode, len(episode) - 1, "Reacher-v5") == 0  # wraps to the reset
    episode.obs[:] += 0.01
    with pytest.raises(RuntimeError, match="Reacher-v5: restoring qpos/qvel reproduced no recorded observation"):
        _restorable_step(raw, episode, 0, "Reacher-v5")
    env.close()


def _rollout(n: int, perfect: bool) -> Rollout:
    rng = np.random.default_rng(n)
    real_obs = rng.normal(size=(n + 1, 3)).astype(np.float32)
    real_frames = rng.integers(0, 256, (n + 1, 16, 16, 3), dtype=np.uint8)
    real_rewards = rng.normal(size=n).astype(np.float32)
    shift = 0 if perfect else 1
    return Rollout(
        source="random",
        start_step=0,
        actions=np.zeros((n, 1), np.float32),
        real_obs=real_obs,
        real_frames=real_frames,
        real_rewards=real_rewards,
        pred_obs=real_obs[1:] + shift,
        pred_frames=real_frames[1:],
        pred_rewards=real_rewards + shift,
        last_reward=0.0,
    )


def test_horizon_curves_average_the_rollouts_still_running():
    std = np.full(3, 2.0, np.float32)
    curves = horizon_curves([_rollout(4, perfect=True), _rollout(2, perfect=False)], std)["random"]
    assert curves["horizon"] == [1, 2, 3, 4] and curves["count"] == [2, 2, 1, 1]
    # Horizons 1-2 average a perfect rollout (0) and one off by 1 in every dimension (0.5 std).
    assert curves["state_error"][:2] == pytest.approx([0.25, 0.25])
    assert curves["state_error"][2:] == pytest.approx([0.0, 0.0])
    assert curves["reward_error"] == pytest.approx([0.5, 0.5, 0.0, 0.0])
    assert curves["ssim"] == pytest.approx([1.0] * 4)
    assert all(s < 1 for s in curves["ssim_copy_last"]) and all(e > 0 for e in curves["state_error_copy_last"])


def test_checks_hold_each_horizon_to_the_cards_thresholds():
    from dataclasses import replace

    task = replace(load_task("reacher"), horizons=(1, 2, 9), max_state_error_ratio=0.5, min_psnr_gain=1.0)
    curve = {
        "horizon": [1.0, 2.0, 3.0],  # horizon 9 is not reached: no check there
        "count": [4.0, 3.0, 3.0],
        "state_error": [0.1, 0.6, 0.0],
        "state_error_copy_last": [1.0, 1.0, 1.0],
        "psnr": [31.0, 35.0, 0.0],
        "psnr_copy_last": [30.0, 34.5, 0.0],
    }
    heldout = {"open_loop/1/state_error": 0.5, "open_loop/1/state_error_copy_last": 1.0}
    heldout |= {"open_loop/1/psnr": 20.0, "open_loop/1/psnr_copy_last": 21.0}
    checks = fidelity_checks(task, {"random": curve}, heldout)
    verdicts = {(c.table, c.horizon, c.metric): (c.limit, c.passed) for c in checks}
    assert verdicts == {
        ("matched, random actions", 1, "state_error"): (0.5, True),
        ("matched, random actions", 1, "psnr"): (31.0, True),  # on the limit passes
        ("matched, random actions", 2, "state_error"): (0.5, False),
        ("matched, random actions", 2, "psnr"): (35.5, False),
        ("held-out open-loop", 1, "state_error"): (0.5, True),
        ("held-out open-loop", 1, "psnr"): (22.0, False),
    }
    unchecked = unchecked_horizons(task, {"random": curve}, heldout)
    assert unchecked == {"matched, random actions": [9], "held-out open-loop": [2, 9]}
    text = checks_markdown(task, checks, unchecked)
    assert "3 of 6 passed, two per row" in text and "| matched, random actions | 1 | 4 |" in text
    assert "Not checked: matched, random actions at horizon 9, which no rollout reached" in text
    assert "Not checked: held-out open-loop at horizon 2, 9, which the held-out episodes are too short for." in text
    assert "| matched, random actions | 2 | 3 | 0.600 | ≤ 0.500 | 35.00 | ≥ 35.50 | fail: state, frame |" in text
    assert "| held-out open-loop | 1 |  | 0.500 | ≤ 0.500 | 20.00 | ≥ 22.00 | fail: frame |" in text
    assert describe(checks[2]) == "matched, random actions, h=2, state error 0.600 > 0.500"
    assert describe(checks[0]) == "matched, random actions, h=1, state error 0.100 <= 0.500"


def test_matched_rollouts_start_from_the_same_state_in_both_worlds(tiny_checkpoint, monkeypatch):
    import dreamsim.validation.matched as matched
    from dreamsim.model.checkpoint import load_checkpoint

    task, model = load_task("reacher"), load_checkpoint(tiny_checkpoint, torch.device("cpu")).model
    env = make_real(task, render=False)
    contexts = []  # the real observations DreamSim filters before each rollout
    real_predict = matched._predict
    monkeypatch.setattr(matched, "_predict", lambda model, obs, *rest: contexts.append(obs) or real_predict(model, obs, *rest))

    def rollouts_now() -> list[Rollout]:
        sources = {"random": RandomAgent(env.action_space, seed=1), "zero": ConstantAgent(env.action_space)}
        return matched_rollouts(model, task, RandomAgent(env.action_space, seed=2), sources, starts=3, horizon=7)

    rollouts = rollouts_now()
    assert [r.source for r in rollouts] == ["random", "zero"] * 3
    for context, rollout in zip(contexts, rollouts, strict=True):  # DreamSim's context ends at MuJoCo's start
        np.testing.assert_allclose(context[-1], rollout.real_obs[0], atol=1e-5)
        assert 1 <= len(context) <= 6  # up to 5 steps of real context before it
    for random_run, zero_run in zip(rollouts[::2], rollouts[1::2], strict=True):
        np.testing.assert_array_equal(random_run.real_obs[0], zero_run.real_obs[0])  # one start, two sources
        assert len(random_run.actions) == len(random_run.pred_obs) == len(random_run.real_obs) - 1 == 7
        assert random_run.pred_frames.shape == random_run.real_frames[1:].shape
        assert (zero_run.actions == 0).all() and np.abs(random_run.actions).max() <= 1.0
    np.testing.assert_array_equal(rollouts_now()[0].pred_obs, rollouts[0].pred_obs)  # seeded end to end


def test_transfer_gap_pairs_episodes_from_the_same_start(tiny_checkpoint, monkeypatch):
    from dreamsim.sim.env import DreamSimEnv

    task = load_task("reacher")
    env = make_real(task, render=False)
    dream_starts = []
    dream_reset = DreamSimEnv.reset

    def reset(self, *, seed=None, options=None):
        dream_starts.append(options["obs"])
        return dream_reset(self, seed=seed, options=options)

    monkeypatch.setattr(DreamSimEnv, "reset", reset)
    result = transfer_gap(task, {"zero": ConstantAgent(env.action_space)}, episodes=3, checkpoint=tiny_checkpoint)["zero"]
    assert len(dream_starts) == 3
    for i, start in enumerate(dream_starts):  # DreamSim starts each episode where MuJoCo's seed put it
        np.testing.assert_array_equal(start, env.reset(seed=i)[0])
    real, dream = np.array(result["real_returns"]), np.array(result["dream_returns"])
    assert real.shape == dream.shape == (3,) and (real < 0).all()
    assert result["gap_mean"] == pytest.approx(float((dream - real).mean()))
    again = transfer_gap(task, {"zero": ConstantAgent(env.action_space)}, episodes=3, checkpoint=tiny_checkpoint)
    assert again["zero"]["real_returns"] == result["real_returns"]  # same seeds, same real episodes
    with pytest.raises(ValueError, match="at least 2 episodes"):
        transfer_gap(task, {}, episodes=1)


def test_validate_settings_and_targets_fail_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="at least 2 episodes"):
        ValidateConfig(transfer_episodes=1)
    with pytest.raises(ValueError, match="at least 1"):
        ValidateConfig(horizon=0)
    with pytest.raises(ValueError, match="at least 2 episodes"):  # before minutes of agent training
        run_demo("reacher", tmp_path, agent_steps=10_000, episodes=1)
    with pytest.raises(FileNotFoundError, match="neither a task .*reacher.* nor a checkpoint folder"):
        validate("reachr", tmp_path)
    assert not any(tmp_path.iterdir())
    import json
    import shutil

    from dreamsim.resources import assets_dir

    shutil.copytree(assets_dir() / "reacher", tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({**config, "task": "reachr"}))
    with pytest.raises(ValueError, match="ckpt was trained for task 'reachr', which this DreamSim lacks: unknown task"):
        validate(tmp_path / "ckpt", tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_validate_names_a_missing_or_another_tasks_policy(tiny_checkpoint, tmp_path):
    from stable_baselines3 import SAC

    with pytest.raises(FileNotFoundError, match="sac_in_dream"):
        validate(tiny_checkpoint, tmp_path / "report", ValidateConfig(policy=str(tmp_path / "nope.zip")))
    SAC("MlpPolicy", "Pendulum-v1").save(tmp_path / "pendulum.zip")
    with pytest.raises(ValueError, match="pass a policy trained on reacher"):
        validate(tiny_checkpoint, tmp_path / "report", ValidateConfig(policy=str(tmp_path / "pendulum.zip")))
    assert not (tmp_path / "report").exists()  # nothing half-written


def test_validate_names_an_empty_episode_folder_before_any_rollout(tiny_checkpoint, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="dreamsim collect reacher"):
        validate(tiny_checkpoint, tmp_path / "report", ValidateConfig(episodes=str(tmp_path / "empty")))
    assert not (tmp_path / "report").exists()


def test_validate_refuses_another_tasks_episodes_before_any_rollout(tiny_checkpoint, tmp_path):
    from synthetic import dot_episode

    from dreamsim.data import EpisodeStore

    EpisodeStore(tmp_path / "dots").write(dot_episode(np.random.default_rng(0)))  # 2-d states, not Reacher's 10
    with pytest.raises(ValueError, match=r"sizes \(2, 2, 16\), the model in .* \(10, 2, 64\): collect them for reacher"):
        validate(tiny_checkpoint, tmp_path / "report", ValidateConfig(episodes=str(tmp_path / "dots")))
    assert not (tmp_path / "report").exists()


def test_a_report_that_fails_midway_leaves_the_old_one_whole(tiny_checkpoint, tmp_path, monkeypatch):
    import dreamsim.validation.report as report

    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("old report")
    (out / "notes.txt").write_text("a reader's own file")

    def no_ffmpeg(rollouts, path):
        raise OSError("ffmpeg not found")

    monkeypatch.setattr(report, "_video", no_ffmpeg)
    with pytest.raises(OSError, match="ffmpeg"):
        validate(tiny_checkpoint, out, ValidateConfig(starts=2, horizon=5, transfer_episodes=2))
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "report.md"]
    assert (out / "report.md").read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report"], "no staging folder left behind"
    monkeypatch.undo()
    (out / "fidelity.json").write_text("{}")  # an older report's held-out section, which this one lacks
    assert validate(tiny_checkpoint, out, ValidateConfig(starts=2, horizon=5, transfer_episodes=2)) == out / "report.md"
    assert {p.name for p in out.iterdir()} == {"errors.png", "rollouts.mp4", "report.json", "report.md", "notes.txt"}
    assert "## Transfer gap" in (out / "report.md").read_text()
