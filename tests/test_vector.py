from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from dreamsim.integrations.sb3 import DreamSimVecEnv
from dreamsim.sim import BatchSim, DreamSimVectorEnv


def test_make_vec_returns_the_native_vector_env(tiny_checkpoint):
    env = gym.make_vec("DreamSim-v0", num_envs=3, checkpoint=tiny_checkpoint, render_mode="rgb_array")
    assert isinstance(env.unwrapped, DreamSimVectorEnv)
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 10) and env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert reward.shape == terminated.shape == truncated.shape == (3,)
    assert info["disagreement"].shape == (3,)
    frames = env.render()  # a Sequence of frames, as Gymnasium's vector envs and its vector RecordVideo expect
    assert isinstance(frames, Sequence) and len(frames) == 3
    assert all(frame.shape == (64, 64, 3) and frame.dtype == np.uint8 for frame in frames)


def test_settings_of_the_wrong_type_are_named(tiny_checkpoint):
    for bad in ({"num_envs": "4"}, {"num_envs": 4.0}, {"num_envs": True}):
        with pytest.raises(ValueError, match="num_envs must be an int"):
            BatchSim("reacher", checkpoint=tiny_checkpoint, device="cpu", **bad)
    with pytest.raises(ValueError, match="uncertainty_penalty must be a number"):
        BatchSim("reacher", 2, checkpoint=tiny_checkpoint, device="cpu", uncertainty_penalty="0.5")
    with pytest.raises(ValueError, match="max_episode_steps must be an int"):
        BatchSim("reacher", 2, checkpoint=tiny_checkpoint, device="cpu", max_episode_steps=10.5)
    vec = DreamSimVectorEnv(2, checkpoint=tiny_checkpoint)
    np.testing.assert_array_equal(vec.reset(seed=np.int64(3))[0], vec.reset(seed=3)[0])  # numpy ints are ints
    np.testing.assert_array_equal(vec.reset(seed=range(3, 5))[0], vec.reset(seed=[3, 4])[0])
    with pytest.raises(ValueError, match="seed must be an int or a list of 2"):
        vec.reset(seed="12")  # not seeds 1 and 2


def _single_rollout(env, seed, actions):
    """A single env driven the way the vector env autoresets: reset on the step after an end."""
    obs, _ = env.reset(seed=seed)
    observations, rewards, done = [obs], [], False
    for a in actions:
        if done:
            (obs, _), reward, done = env.reset(), 0.0, False
        else:
            obs, reward, terminated, truncated, _ = env.step(a)
            done = terminated or truncated
        observations.append(obs)
        rewards.append(reward)
    return np.array(observations), np.array(rewards)


def test_make_vec_takes_gyms_no_time_limit(tiny_checkpoint, never_terminates):
    env = gym.make_vec("DreamSim-v0", num_envs=2, checkpoint=tiny_checkpoint, max_episode_steps=-1)
    env.reset(seed=0)
    for _ in range(60):  # past the card's 50 steps
        *_, terminated, truncated, _ = env.step(np.zeros((2, 2), np.float32))
        assert not (terminated | truncated).any()


def test_vector_env_matches_single_envs_with_the_same_seeds(tiny_checkpoint):
    n, steps = 3, 12
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, n, 2)).astype(np.float32)
    vec = DreamSimVectorEnv(n, checkpoint=tiny_checkpoint)
    v_obs, v_rew = [vec.reset(seed=10)[0]], []
    for a in actions:
        obs, reward, *_ = vec.step(a)
        v_obs.append(obs)
        v_rew.append(reward)
    v_obs, v_rew = np.array(v_obs), np.array(v_rew)
    for i in range(n):
        single = gym.make("DreamSim-v0", checkpoint=tiny_checkpoint)
        s_obs, s_rew = _single_rollout(single, 10 + i, actions[:, i])
        np.testing.assert_allclose(v_obs[:, i], s_obs, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(v_rew[:, i], s_rew, rtol=1e-4, atol=1e-4)


def test_reset_mask_resets_only_the_masked_envs(tiny_checkpoint, never_terminates):
    vec = DreamSimVectorEnv(3, checkpoint=tiny_checkpoint)
    fresh, _ = vec.reset(seed=0)
    for _ in range(3):
        stepped, *_ = vec.step(np.full((3, 2), 0.5, np.float32))
    obs, _ = vec.reset(seed=0, options={"reset_mask": np.array([True, False, True])})
    assert vec.sim.state.t.tolist() == [0, 3, 0]
    np.testing.assert_allclose(obs[1], stepped[1], rtol=1e-5, atol=1e-5)  # env 1 goes on where it was
    np.testing.assert_allclose(obs[[0, 2]], fresh[[0, 2]], rtol=1e-5, atol=1e-5)  # the same seeds, the same starts
    for bad in (np.array([1, 0, 1]), np.array([True, False]), np.zeros(3, bool)):
        with pytest.raises(ValueError, match="reset_mask"):
            vec.reset(options={"reset_mask": bad})


def test_vector_env_autoresets_on_the_next_step(tiny_checkpoint):
    vec = DreamSimVectorEnv(2, checkpoint=tiny_checkpoint)
    vec.reset(seed=0)
    zeros = np.zeros((2, 2), np.float32)
    done = np.zeros(2, bool)
    for _ in range(60):
        _, reward, term, trunc, info = vec.step(zeros)
        if done.any():
            assert (reward[done] == 0).all() and not (term[done] | trunc[done]).any()
            np.testing.assert_array_equal(info["_disagreement"], ~done)  # a restarted env's info is its reset's
            assert (vec.sim.state.t.numpy()[done] == 0).all()
            return
        done = term | trunc
    pytest.fail("no episode ended within 60 steps (episode length is 50)")


def test_sb3_vec_env_resets_finished_envs_in_the_same_step(tiny_checkpoint, never_terminates):
    env = DreamSimVecEnv("DreamSim-v0", num_envs=4, checkpoint=tiny_checkpoint)
    assert isinstance(env, VecEnv)
    twin = BatchSim("reacher", 4, checkpoint=tiny_checkpoint, device="cpu")  # the same envs, no autoreset
    env.seed(3)
    twin.seed(range(3, 7))
    obs = env.reset()
    twin.reset()
    assert obs.shape == (4, 10)
    for step in range(1, 51):
        obs, rewards, dones, infos = env.step(np.zeros((4, 2), np.float32))
        last = twin.to_numpy(twin.step(torch.zeros(4, 2))[0])
        assert rewards.dtype == np.float32 and len(infos) == 4
        assert dones.all() == (step == 50) and dones.any() == (step == 50)
    for i in range(4):
        assert infos[i]["TimeLimit.truncated"] is True
        np.testing.assert_allclose(infos[i]["terminal_observation"], last[i], rtol=1e-5, atol=1e-5)  # the 50th step's
        assert not np.array_equal(infos[i]["terminal_observation"], obs[i])  # obs[i] is the new episode's
    assert (env.sim.state.t == 0).all()


def test_partial_reset_keeps_the_other_envs(tiny_checkpoint):
    sim = BatchSim("reacher", 3, checkpoint=tiny_checkpoint, device="cpu")
    sim.seed([0, 1, 2])
    sim.reset()
    with pytest.raises(TypeError, match="torch.as_tensor"):
        sim.step(np.zeros((3, 2), np.float32))
    sim.step(torch.zeros(3, 2))
    before = sim.state
    sim.reset([2, 0])
    assert sim.state.t.tolist() == [0, 1, 0]
    torch.testing.assert_close(sim.state.deter[1], before.deter[1])
    with pytest.raises(RuntimeError, match="reset all envs once"):
        fresh = BatchSim("reacher", 3, checkpoint=tiny_checkpoint, device="cpu")
        fresh.reset([1])


def test_each_env_keeps_the_real_frame_it_started_from(tiny_checkpoint, reacher_episodes):
    """The frame decoder blends with an env's start frame: a partial reset replaces that env's alone."""
    from dreamsim.data import EpisodeStore

    ep = EpisodeStore.read(EpisodeStore(reacher_episodes).paths()[0])
    sim = BatchSim("reacher", 2, checkpoint=tiny_checkpoint, device="cpu")
    assert sim.core.model.cfg.frame_reference
    sim.reset(context={"obs": ep.obs[[3, 40]], "frame": ep.frames[[3, 40]]})
    sim.step(torch.zeros(2, 2))
    sim.reset([1], context={"obs": ep.obs[[10]], "frame": ep.frames[[10]]})
    assert sim.state.reference is not None
    assert torch.equal(sim.state.reference, torch.as_tensor(ep.frames[[3, 10]]))


def test_a_refused_reset_changes_nothing(tiny_checkpoint, never_terminates):
    """Bad start frames raise before any seed, episode count or pending autoreset changes: the next
    good reset and step go exactly as if the bad one had not been tried."""
    bad = {"obs": np.zeros(10, np.float32), "frame": np.zeros((480, 480, 3), np.uint8)}
    runs = []
    for tried in (False, True):
        vec = DreamSimVectorEnv(2, checkpoint=tiny_checkpoint)
        vec.reset(seed=0)
        for _ in range(50):  # to the time limit: both envs autoreset on the next step
            *_, trunc, _ = vec.step(np.zeros((2, 2), np.float32))
        assert trunc.all()
        if tried:
            with pytest.raises(ValueError, match="frames come from"):
                vec.reset(seed=7, options=bad)
        restarted, reward, *_ = vec.step(np.zeros((2, 2), np.float32))
        assert (reward == 0).all()  # the autoreset step, still pending after the refused reset
        runs.append((restarted, vec.reset()[0]))  # unseeded: the next start state of seed 0's envs
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_vector_reset_from_real_contexts(tiny_checkpoint, reacher_episodes):
    from dreamsim.data import EpisodeStore

    ep = EpisodeStore.read(EpisodeStore(reacher_episodes).paths()[0])
    vec = DreamSimVectorEnv(2, checkpoint=tiny_checkpoint, obs_mode="latent")
    obs, _ = vec.reset(seed=0, options={"obs": ep.obs[[3, 40]], "frame": ep.frames[[3, 40]]})
    assert obs.shape == (2, vec.single_observation_space.shape[0]) and not np.array_equal(obs[0], obs[1])
    with pytest.raises(ValueError, match="expected"):
        vec.reset(options={"obs": ep.obs[[3]], "frame": ep.frames[[3]]})
    one_for_all, _ = vec.reset(seed=0, options={"obs": ep.obs[3], "frame": ep.frames[3]})
    np.testing.assert_array_equal(one_for_all, vec.reset(seed=0, options={"obs": ep.obs[[3, 3]], "frame": ep.frames[[3, 3]]})[0])
    with pytest.raises(ValueError, match=r"frames come from dreamsim.make_real\('reacher'\)"):
        vec.reset(options={"obs": ep.obs[3], "frame": np.zeros((480, 480, 3), np.uint8)})
    with pytest.raises(ValueError, match="NaN or inf"):
        vec.reset(options={"obs": np.full((2, 10), np.inf), "frame": ep.frames[[3, 40]]})
    with pytest.warns(UserWarning, match=r"\['state'\] are ignored"):
        vec.reset(options={"state": ep.obs[[3, 40]], "reset_mask": np.array([True, False])})


def test_sb3_vec_env_refuses_a_task_other_than_its_ids():
    with pytest.raises(ValueError, match="DreamSim-v0 simulates reacher; for hopper pass .*DreamSimVecEnv\\('hopper'\\)"):
        DreamSimVecEnv("DreamSim-v0", task="hopper")
    with pytest.raises(ValueError, match="Reacher-v5 is not a DreamSim id: pass DreamSim-v0"):
        DreamSimVecEnv("Reacher-v5")


def test_sb3_vec_env_refuses_actions_of_another_shape(tiny_checkpoint):
    env = DreamSimVecEnv("DreamSim-v0", num_envs=4, checkpoint=tiny_checkpoint)
    env.reset()
    for bad in (np.zeros((2, 4)), np.zeros(8), np.zeros((4, 2, 1))):  # as many numbers, the wrong layout
        with pytest.raises(ValueError, match=r"expected \(4, 2\)"):
            env.step(bad)
    assert env.metadata["render_fps"] == gym.make("Reacher-v5").metadata["render_fps"]  # videos play in real time


def test_sb3_vec_env_attributes_are_shared_by_all_envs(tiny_checkpoint):
    env = DreamSimVecEnv("DreamSim-v0", num_envs=3, checkpoint=tiny_checkpoint)
    env.set_attr("label", "a")
    env.set_attr("label", "b", indices=[2, 0, 1])
    assert env.get_attr("label") == ["b"] * 3 and env.get_attr("label", indices=1) == ["b"]
    with pytest.raises(ValueError, match=r"share their attributes: set 'label' for all 3 \(indices=None\)"):
        env.set_attr("label", "c", indices=[0])
    assert env.get_attr("label") == ["b"] * 3  # nothing half-set


def test_sb3_vec_env_resets_from_set_options_once(tiny_checkpoint, reacher_episodes):
    from dreamsim.data import EpisodeStore

    ep = EpisodeStore.read(EpisodeStore(reacher_episodes).paths()[0])
    env = DreamSimVecEnv("DreamSim-v0", num_envs=2, checkpoint=tiny_checkpoint, obs_mode="latent")
    sim = BatchSim("reacher", 2, checkpoint=tiny_checkpoint, device="cpu", obs_mode="latent")
    sim.seed([0, 1])
    expected = sim.to_numpy(sim.reset(context={"obs": ep.obs[[3, 40]], "frame": ep.frames[[3, 40]]}))
    env.seed(0)
    env.set_options([{"obs": ep.obs[i], "frame": ep.frames[i]} for i in (3, 40)])
    np.testing.assert_allclose(env.reset(), expected, rtol=1e-5, atol=1e-5)
    env.seed(0)
    assert not np.allclose(env.reset(), expected)  # the options served one reset: drawn start states now
    env.set_options([{"obs": ep.obs[3], "frame": ep.frames[3]}, {}])
    with pytest.raises(ValueError, match="give each env the same keys"):
        env.reset()
    env.set_options([{"obs": ep.obs[3], "frame": ep.frames[3]}, {"obs": ep.obs[40]}])  # a frame for one env only
    with pytest.raises(ValueError, match="give each env the same keys"):
        env.reset()
    env.set_options({"obs": np.full(10, np.nan), "frame": ep.frames[3]})  # SB3 copies one dict to every env
    with pytest.raises(ValueError, match="NaN or inf"):
        env.reset()


@pytest.mark.parametrize("algo", ["PPO", "SAC"])
def test_sb3_agents_train_on_the_vec_env(tiny_checkpoint, algo):
    import stable_baselines3 as sb3

    env = DreamSimVecEnv("DreamSim-v0", num_envs=8, checkpoint=tiny_checkpoint)
    kwargs = {"n_steps": 16, "batch_size": 32} if algo == "PPO" else {"learning_starts": 16, "batch_size": 32}
    model = getattr(sb3, algo)("MlpPolicy", env, seed=0, device="cpu", **kwargs)
    model.learn(total_timesteps=256)
    action, _ = model.predict(env.reset(), deterministic=True)
    assert action.shape == (8, 2) and np.isfinite(action).all()


def test_torch_path_stays_on_device(tiny_checkpoint):
    sim = BatchSim("reacher", 5, checkpoint=tiny_checkpoint, obs_mode="pixels", device="cpu")
    sim.seed(range(5))
    obs = sim.reset()
    assert isinstance(obs, torch.Tensor) and obs.shape == (5, 64, 64, 3) and obs.dtype == torch.uint8
    obs, reward, terminated, truncated, info = sim.step(torch.zeros(5, 2))
    assert obs.shape == (5, 64, 64, 3) and reward.shape == (5,)
    with pytest.raises(ValueError, match="expected"):
        sim.step(torch.zeros(4, 2))


@pytest.mark.parametrize("obs_mode", ["state", "pixels", "latent", "dict"])
def test_vector_env_contract_in_every_obs_mode(tiny_checkpoint, obs_mode):
    """Gymnasium ships no checker for vector envs; this checks the same properties as check_env."""
    env = gym.make_vec("DreamSim-v0", num_envs=2, checkpoint=tiny_checkpoint, obs_mode=obs_mode)
    first, info = env.reset(seed=5)
    assert env.observation_space.contains(first) and isinstance(info, dict)
    again, _ = env.reset(seed=5)
    np.testing.assert_equal(first, again)  # same seed, same reset
    env.action_space.seed(0)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert reward.dtype.kind == "f" and terminated.dtype == truncated.dtype == np.bool_
    with pytest.raises(ValueError, match="expected"):
        env.step(np.zeros((3, 2), np.float32))


@pytest.mark.gpu
def test_cuda_batch_matches_cpu(tiny_checkpoint):
    """The device path computes the same rollout as the CPU one (float tolerance)."""
    out = {}
    for device in ("cpu", "cuda"):
        sim = BatchSim("reacher", 4, checkpoint=tiny_checkpoint, device=device)
        sim.seed(range(4))
        obs = [sim.reset()]
        for _ in range(5):
            obs.append(sim.step(torch.full((4, 2), 0.3, device=sim.device))[0])
        out[device] = torch.stack(obs).cpu()
    torch.testing.assert_close(out["cuda"], out["cpu"], rtol=1e-3, atol=1e-3)


def test_uncertainty_penalty_lowers_each_reward_by_the_disagreement(tiny_checkpoint):
    rewards, infos = [], []
    for penalty in (0.0, 2.5):
        sim = BatchSim("reacher", 4, checkpoint=tiny_checkpoint, device="cpu", uncertainty_penalty=penalty)
        sim.seed(range(4))
        sim.reset()
        _, reward, _, _, info = sim.step(torch.full((4, 2), 0.3))
        rewards.append(reward)
        infos.append(info["disagreement"])
    torch.testing.assert_close(infos[0], infos[1])
    assert (infos[0] > 0).all()
    torch.testing.assert_close(rewards[1], rewards[0] - 2.5 * infos[0])
    with pytest.raises(ValueError, match="uncertainty_penalty must be a number >= 0"):
        BatchSim("reacher", 1, checkpoint=tiny_checkpoint, device="cpu", uncertainty_penalty=-1.0)


def test_branched_rollouts_start_anywhere_in_real_episodes_and_stop_early(tiny_checkpoint, reacher_episodes, never_terminates):
    from dreamsim.data import EpisodeStore

    sim = BatchSim("reacher", 8, checkpoint=tiny_checkpoint, device="cpu", max_episode_steps=3, start_episodes=reacher_episodes)
    real = np.concatenate([e.obs for e in EpisodeStore(reacher_episodes).episodes()])
    resets = np.concatenate([e.obs[:1] for e in EpisodeStore(reacher_episodes).episodes()])
    starts = sim.start_obs.numpy()
    assert len(starts) == len(real)  # fewer observations than MAX_STARTS: all of them
    assert all((real == row).all(1).any() for row in starts)
    assert sum((resets == row).all(1).any() for row in starts) == len(resets)  # mid-episode starts, not only resets
    drawn = []  # the start observations the resets hand the model
    initial = sim.core.initial
    sim.core.initial = lambda frames, obs, seeds: drawn.append(obs.numpy().copy()) or initial(frames, obs, seeds)
    sim.seed(range(8))
    sim.reset()
    for step in (1, 2, 3):
        _, _, terminated, truncated, _ = sim.step(torch.zeros(8, 2))
        assert truncated.all() == (step == 3) and not terminated.any()
    for _ in range(7):
        sim.reset()
    drawn = np.concatenate(drawn)
    assert len(np.unique(drawn, axis=0)) > 32  # 64 resets draw from all over the episodes
    assert sum(not (resets == row).all(1).any() for row in drawn) > 32  # most are mid-episode
    with pytest.raises(ValueError, match="max_episode_steps must be an int of at least 1"):
        BatchSim("reacher", 1, checkpoint=tiny_checkpoint, device="cpu", max_episode_steps=0)


def test_start_observations_leave_out_what_ends_an_episode(tmp_path):
    import dataclasses

    from synthetic import dot_episode

    from dreamsim.data import EpisodeStore

    rng = np.random.default_rng(0)
    store = EpisodeStore(tmp_path)
    ended = dot_episode(rng, steps=5)
    ended = dataclasses.replace(ended, terminated=np.eye(1, 5, 4, dtype=bool)[0], truncated=np.zeros(5, bool))
    store.write(ended)
    store.write(dot_episode(rng, steps=5))
    drawn = store.observations(limit=1000)
    assert len(drawn["obs"]) == 6 + 5 and drawn["frames"].dtype == np.uint8
    assert not (drawn["obs"] == ended.obs[-1]).all(1).any()  # the terminal observation is not a start
    assert 2 <= len(store.observations(limit=4)["obs"]) <= 8  # about the limit
    with pytest.raises(ValueError, match="empty does not exist: collect some"):
        EpisodeStore(tmp_path / "empty").observations(limit=10)


FORKING_VECTOR_ENVS = {
    # Gymnasium builds one env in the parent, so its torch holds an OpenMP thread pool, then forks.
    "gymnasium-async": (
        "envs = gym.make_vec('DreamSim-v0', num_envs=2, vectorization_mode='async', vector_kwargs={'context': 'fork'},"
        " checkpoint=CKPT, device='cpu')\n"
        "envs.reset(seed=0)\n"
        "obs, reward, *_ = envs.step(envs.action_space.sample())\n"
    ),
    # The parent used torch before any env was made, so only `import dreamsim` has run.
    "sb3-subproc": (
        "from stable_baselines3.common.env_util import make_vec_env\n"
        "from stable_baselines3.common.vec_env import SubprocVecEnv\n"
        "x = torch.randn(256, 256); x @ x\n"
        "envs = make_vec_env('DreamSim-v0', n_envs=2, vec_env_cls=SubprocVecEnv, vec_env_kwargs={'start_method': 'fork'},"
        " env_kwargs={'checkpoint': CKPT, 'device': 'cpu'})\n"
        "envs.reset()\n"
        "obs, reward, *_ = envs.step(np.stack([envs.action_space.sample()] * 2))\n"
    ),
}


@pytest.mark.parametrize("vector_env", sorted(FORKING_VECTOR_ENVS))
def test_vector_envs_run_in_forked_workers(tiny_checkpoint, vector_env):
    """Forked workers must not wait on the parent's torch thread pool, which forking left behind.
    In a child process, so that a hang fails the test instead of stalling the suite."""
    import os
    import signal
    import subprocess
    import sys

    code = (
        "import gymnasium as gym, numpy as np, torch, dreamsim\n"
        f"CKPT = {str(tiny_checkpoint)!r}\n"
        "torch.set_num_threads(2)\n" + FORKING_VECTOR_ENVS[vector_env] + "envs.close()\n"
        "print(obs.shape, reward.shape)\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = run.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)  # the hung workers too
        run.communicate()
        pytest.fail(f"the {vector_env} vector env hung in its forked workers")
    assert run.returncode == 0, err
    assert out.strip() == "(2, 10) (2,)"
