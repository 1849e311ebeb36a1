import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import dreamsim
from dreamsim.registration import task_id
from dreamsim.resources import assets_dir
from dreamsim.sim import OBS_MODES

SHIPPED = [t for t in dreamsim.list_tasks() if (assets_dir() / t / "config.json").is_file()]
SHIPPED_IDS = [task_id(t) for t in SHIPPED] + (["DreamSim-v0"] if "reacher" in SHIPPED else [])


def _make(checkpoint, **kwargs):
    return gym.make("DreamSim-v0", checkpoint=checkpoint, render_mode="rgb_array", **kwargs)


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_checkers_pass_in_every_obs_mode(tiny_checkpoint, obs_mode):
    env = _make(tiny_checkpoint, obs_mode=obs_mode)
    check_env(env.unwrapped)
    sb3_check_env(env.unwrapped, warn=False)


@pytest.mark.parametrize("env_id", SHIPPED_IDS)
@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_shipped_checkpoints_pass_the_checkers(env_id, obs_mode):
    env = gym.make(env_id, obs_mode=obs_mode, render_mode="rgb_array")
    check_env(env.unwrapped)
    sb3_check_env(env.unwrapped, warn=False)


def test_ids_are_registered():
    ids = set(gym.registry)
    assert "DreamSim-v0" in ids
    for task in dreamsim.list_tasks():
        assert task_id(task) in ids
    assert gym.spec("DreamSim-v0").kwargs["task"] == "reacher"
    assert '"entry_point": "dreamsim.registration:make_hopper"' in gym.spec(task_id("hopper")).to_json()


def test_a_made_envs_spec_is_json_with_a_path_checkpoint(tiny_checkpoint):
    from gymnasium.envs.registration import EnvSpec

    env = gym.make("DreamSim-v0", checkpoint=tiny_checkpoint)  # a Path
    again = gym.make(EnvSpec.from_json(env.spec.to_json()))
    assert again.spec.kwargs["checkpoint"] == str(tiny_checkpoint) and again.unwrapped.sim.num_envs == 1
    vec = gym.make_vec("DreamSim-v0", num_envs=2, checkpoint=tiny_checkpoint)
    assert EnvSpec.from_json(vec.spec.to_json()).kwargs["checkpoint"] == str(tiny_checkpoint)


def test_each_id_carries_its_cards_time_limit():
    for task in dreamsim.list_tasks():
        assert gym.spec(task_id(task)).max_episode_steps == dreamsim.load_task(task).episode_length


def test_actions_are_clipped_to_the_box_and_the_penalty_reaches_gym_make(tiny_checkpoint, never_terminates):
    env, wild = _make(tiny_checkpoint), _make(tiny_checkpoint)
    penalised = _make(tiny_checkpoint, uncertainty_penalty=2.5)
    for e in (env, wild, penalised):
        e.reset(seed=3)
    for _ in range(3):
        obs, reward, *_, info = env.step(np.array([1.0, -1.0], np.float32))
        wild_obs, wild_reward, *_ = wild.step(np.array([5.0, -5.0], np.float32))  # Reacher's box is [-1, 1]
        _, penalised_reward, *_ = penalised.step(np.array([1.0, -1.0], np.float32))
        np.testing.assert_array_equal(wild_obs, obs)
        assert wild_reward == reward
        assert penalised_reward == pytest.approx(reward - 2.5 * info["disagreement"], abs=1e-5)


def test_render_without_a_render_mode_warns_and_returns_none(tiny_checkpoint):
    env = gym.make("DreamSim-v0", checkpoint=tiny_checkpoint)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode='rgb_array'"):
        assert env.render() is None


def test_an_id_refuses_another_task_whose_time_limit_it_lacks():
    for make in (gym.make, lambda *a, **k: gym.make_vec(*a, num_envs=2, **k)):
        with pytest.raises(ValueError, match="simulates reacher under its time limit; for hopper use 'DreamSim/Hopper-v0'"):
            make("DreamSim-v0", task="hopper")


def test_gym_make_wraps_the_render_modes_it_knows(tiny_checkpoint):
    env = gym.make("DreamSim-v0", checkpoint=str(tiny_checkpoint), render_mode="rgb_array_list")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frames = env.render()
    assert len(frames) == 2 and frames[0].shape == (64, 64, 3)


def test_state_mode_copies_the_real_spaces(tiny_checkpoint):
    env = _make(tiny_checkpoint)
    real = dreamsim.make_real("reacher", render=False)
    assert env.observation_space == real.observation_space
    assert env.action_space == real.action_space


@pytest.mark.parametrize("obs_mode", ["pixels", "dict"])
def test_the_real_twin_observes_what_dreamsim_does(tiny_checkpoint, obs_mode):
    """A policy trained on frames in DreamSim runs on make_real(task, obs_mode=...) unchanged."""
    env = _make(tiny_checkpoint, obs_mode=obs_mode)
    with dreamsim.make_real("reacher", obs_mode=obs_mode) as real:
        assert real.observation_space == env.observation_space
        obs, _ = real.reset(seed=0)
        assert real.observation_space.contains(obs)
        obs, *_ = real.step(real.action_space.sample())
        frame = obs if obs_mode == "pixels" else obs["pixels"]
        np.testing.assert_array_equal(frame, real.render())  # the frame after the step
    with pytest.raises(ValueError, match="latent observations are the world model's own"):
        dreamsim.make_real("reacher", obs_mode="latent")
    with pytest.raises(ValueError, match="pass render=True"):
        dreamsim.make_real("reacher", render=False, obs_mode=obs_mode)


def _rollout(env, seed, steps=12):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, *_ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        out += [obs, reward]
    return out


def test_same_seed_same_rollout(tiny_checkpoint):
    a = _rollout(_make(tiny_checkpoint), seed=7)
    b = _rollout(_make(tiny_checkpoint), seed=7)
    c = _rollout(_make(tiny_checkpoint), seed=8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    # Seeds that differ only above bit 31 are still different seeds (the same actions, other noise).
    env = _make(tiny_checkpoint)
    first, high = ([env.reset(seed=s)[0], *(env.step(np.full(2, 0.5, np.float32))[0] for _ in range(5))] for s in (7, 7 + 2**31))
    assert not np.array_equal(np.stack(first), np.stack(high))


def test_step_predicts_observation_reward_and_frame(tiny_checkpoint):
    env = _make(tiny_checkpoint, obs_mode="dict")
    obs, _ = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
    assert obs["state"].shape == (10,) and obs["pixels"].shape == (64, 64, 3)
    assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
    assert info["disagreement"] > 0.0  # the prior heads of an untrained-ish model disagree
    np.testing.assert_array_equal(env.render(), obs["pixels"])  # render() shows the predicted frame


def test_reset_from_a_real_context(tiny_checkpoint, reacher_episodes):
    from dreamsim.data import EpisodeStore

    ep = EpisodeStore.read(EpisodeStore(reacher_episodes).paths()[0])
    env = _make(tiny_checkpoint, obs_mode="latent")
    # Same seed, so the same sampling noise: only the context can tell the latents apart. The tiny
    # model's posteriors are near uniform and the noise may pick the same classes for one seed.
    differs = []
    for seed in range(8):
        a, _ = env.reset(seed=seed, options={"obs": ep.obs[5], "frame": ep.frames[5]})
        b, _ = env.reset(seed=seed, options={"obs": ep.obs[30], "frame": ep.frames[30]})
        assert a.shape == env.observation_space.shape
        differs.append(not np.array_equal(a, b))
    assert any(differs)
    with pytest.raises(ValueError, match="'frame'"):
        env.reset(options={"obs": ep.obs[5]})
    with pytest.raises(ValueError, match=r"'obs' has shape \(3,\), expected \(10,\)"):
        env.reset(options={"obs": ep.obs[5][:3], "frame": ep.frames[5]})
    with pytest.raises(ValueError, match=r"'obs' has shape \(1, 10\), expected \(10,\) \(one observation\)"):
        env.reset(options={"obs": ep.obs[5:6], "frame": ep.frames[5]})
    with pytest.raises(ValueError, match="'obs' contains NaN or inf"):
        env.reset(options={"obs": np.full(10, np.nan), "frame": ep.frames[5]})
    with pytest.warns(UserWarning, match=r"reset options \['observation'\] are ignored"):
        env.reset(options={"observation": ep.obs[5]})  # a typo starts from a shipped state, but not in silence


def test_truncates_at_the_card_episode_length(tiny_checkpoint, never_terminates):
    env = dreamsim.sim.DreamSimEnv("reacher", checkpoint=tiny_checkpoint)
    env.reset(seed=0)
    for step in range(1, 51):
        _, _, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
        assert not terminated and truncated == (step == 50)


def test_continue_head_decides_termination(tiny_checkpoint, monkeypatch):
    from dreamsim.model import WorldModel

    monkeypatch.setattr(WorldModel, "continue_prob", lambda self, feat: torch.zeros(len(feat)))
    env = dreamsim.sim.DreamSimEnv("reacher", checkpoint=tiny_checkpoint)
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
    assert terminated and not truncated


def test_bad_input_raises_a_clear_error(tiny_checkpoint):
    env = _make(tiny_checkpoint)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action has shape \(3,\), expected \(2,\)"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="unknown obs_mode"):
        _make(tiny_checkpoint, obs_mode="rgb")
    with pytest.raises(ValueError, match="unknown task"):
        gym.make("DreamSim-v0", task="walker")
    with pytest.raises(ValueError, match="trained for task 'reacher'"):
        gym.make("DreamSim/Hopper-v0", checkpoint=tiny_checkpoint)
    with pytest.raises(FileNotFoundError, match="is a run folder, not a checkpoint: did you mean .*checkpoint"):
        gym.make("DreamSim-v0", checkpoint=tiny_checkpoint.parent)


def test_bf16_precision_runs_and_stays_close(tiny_checkpoint):
    envs = {p: _make(tiny_checkpoint, precision=p) for p in ("fp32", "bf16")}
    gaps = []
    for seed in range(8):
        out = {p: env.reset(seed=seed)[0] for p, env in envs.items()}
        assert envs["bf16"].observation_space.contains(out["bf16"])
        gaps.append(np.abs(out["bf16"] - out["fp32"]).max())
    # Most resets agree to a few hundredths; about one in seventy jumps far (rounding can tip a
    # categorical latent sample into another class), so one reset alone makes a flaky test.
    assert 0 < np.median(gaps) < 0.1, gaps  # bf16 really ran: its rounding shows
    with pytest.raises(ValueError, match="unknown precision"):
        _make(tiny_checkpoint, precision="fp8")


def test_gym_make_passes_start_episodes_and_episode_length(tiny_checkpoint, reacher_episodes, never_terminates):
    env = gym.make("DreamSim-v0", checkpoint=tiny_checkpoint, start_episodes=reacher_episodes, max_episode_steps=4)
    env.reset(seed=0)
    truncations = [env.step(env.action_space.sample())[3] for _ in range(4)]
    assert truncations == [False, False, False, True]
    longer = gym.make("DreamSim-v0", checkpoint=tiny_checkpoint, max_episode_steps=80)  # the card says 50
    longer.reset(seed=0)
    truncations = [longer.step(longer.action_space.sample())[3] for _ in range(80)]
    assert truncations == [False] * 79 + [True]
    from dreamsim.data import EpisodeStore

    assert len(env.unwrapped.sim.start_obs) > len(EpisodeStore(reacher_episodes).paths())  # not only the resets
    vec = gym.make_vec("DreamSim-v0", num_envs=3, checkpoint=tiny_checkpoint, start_episodes=reacher_episodes)
    assert len(vec.unwrapped.sim.start_obs) == len(env.unwrapped.sim.start_obs)


def test_a_reset_context_is_the_state_the_episode_starts_in(dot_run):
    """The square world's model decodes the observation it was handed, wherever that is."""
    from synthetic import DOT_TASK, _frame

    from dreamsim.sim import BatchSim

    sim = BatchSim(DOT_TASK, 3, checkpoint=dot_run[0], device="cpu")
    given = np.array([[0.6, -0.4], [-0.7, 0.3], [0.4, 0.8]], np.float32)
    obs = sim.to_numpy(sim.reset(context={"obs": given, "frame": np.stack([_frame(p) for p in given])}))
    np.testing.assert_allclose(obs, given, atol=0.15)
    # The state itself counts, not only the frame: one frame, opposite states, opposite starts.
    centre = np.stack([_frame(np.zeros(2))] * 3)
    a = sim.to_numpy(sim.reset(context={"obs": given, "frame": centre}))
    b = sim.to_numpy(sim.reset(context={"obs": -given, "frame": centre}))
    assert (np.sign(a - b) == np.sign(given)).all(), (a, b)


def test_devices_other_than_cpu_and_cuda_are_refused_by_name():
    from dreamsim.device import resolve_device

    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("mps", "banana", None):
        with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
            resolve_device(bad)  # type: ignore[arg-type]
    if not torch.cuda.is_available():
        for cuda in ("cuda", torch.device("cuda")):
            with pytest.raises(ValueError, match="no CUDA GPU is available"):
                resolve_device(cuda)


def test_a_task_without_a_shipped_checkpoint_names_the_commands_that_make_one():
    from synthetic import DOT_TASK

    from dreamsim.sim import BatchSim

    with pytest.raises(FileNotFoundError, match="no shipped checkpoint for task 'dot'.*`dreamsim train dot`"):
        BatchSim(DOT_TASK, 1, device="cpu")
