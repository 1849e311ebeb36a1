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
    assert env.render().shape == (3, 64, 64, 3)


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


def test_vector_env_autoresets_on_the_next_step(tiny_checkpoint):
    vec = DreamSimVectorEnv(2, checkpoint=tiny_checkpoint)
    vec.reset(seed=0)
    zeros = np.zeros((2, 2), np.float32)
    done = np.zeros(2, bool)
    for _ in range(60):
        _, reward, term, trunc, _ = vec.step(zeros)
        if done.any():
            assert (reward[done] == 0).all() and not (term[done] | trunc[done]).any()
            assert (vec.sim.state.t.numpy()[done] == 0).all()
            return
        done = term | trunc
    pytest.fail("no episode ended within 60 steps (episode length is 50)")


def test_sb3_vec_env_resets_finished_envs_in_the_same_step(tiny_checkpoint):
    env = DreamSimVecEnv("DreamSim-v0", num_envs=4, checkpoint=tiny_checkpoint)
    assert isinstance(env, VecEnv)
    env.seed(3)
    obs = env.reset()
    assert obs.shape == (4, 10)
    for _ in range(60):
        obs, rewards, dones, infos = env.step(np.zeros((4, 2), np.float32))
        assert rewards.dtype == np.float32 and len(infos) == 4
        if dones.any():
            i = int(np.flatnonzero(dones)[0])
            assert infos[i]["terminal_observation"].shape == (10,)
            assert "TimeLimit.truncated" in infos[i]
            assert env.sim.state.t[i] == 0
            return
    pytest.fail("no episode ended within 60 steps")


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
