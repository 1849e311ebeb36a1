"""Matched-state rollouts: the same actions from the same real state, in MuJoCo and in DreamSim.

Start states come from real episodes of a behaviour agent (the validated policy, or random actions).
At a start step ``t0`` (one whose recorded observation the restore reproduces) MuJoCo's qpos/qvel
are restored from the recording, and DreamSim filters the real context (the observations up to
``t0``, at most ``context`` of them) through its posterior.
Both then roll the same actions for up to ``horizon`` steps: each action source (random actions, the
policy) chooses them from the *real* observations, and DreamSim receives the same sequence open-loop.
MuJoCo is stepped without a time limit and stops where the task terminates.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dreamsim.control import Agent, frame_for
from dreamsim.data.collect import run_episode
from dreamsim.data.store import Episode
from dreamsim.device import seeded
from dreamsim.model.world_model import WorldModel
from dreamsim.planning.objectives import step_physics
from dreamsim.tasks import Task, make_real
from dreamsim.training.evaluation import psnr, ssim


@dataclass
class Rollout:
    """One start state and one action source; MuJoCo (``real_*``) and DreamSim (``pred_*``)."""

    source: str
    start_step: int  # t0 in its behaviour episode
    actions: np.ndarray  # (n, A)
    real_obs: np.ndarray  # (n + 1, D); index 0 is the start state
    real_frames: np.ndarray  # (n + 1, H, W, 3)
    real_rewards: np.ndarray  # (n,)
    pred_obs: np.ndarray  # (n, D); index i follows i + 1 actions
    pred_frames: np.ndarray  # (n, H, W, 3)
    pred_rewards: np.ndarray  # (n,)
    last_reward: float  # the last real reward before the start (0 at an episode's first step)


@torch.inference_mode()
def _predict(
    model: WorldModel, obs: np.ndarray, frames: np.ndarray, context_actions: np.ndarray, actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Filter the real context ``obs/frames (C + 1, ...)`` joined by ``context_actions (C, A)``, then
    roll ``actions`` open-loop; returns predicted states, frames and rewards."""
    device = next(model.parameters()).device
    as_t = lambda x: torch.as_tensor(np.ascontiguousarray(x), device=device)  # noqa: E731
    obs_t, frames_t = as_t(obs.astype(np.float32)), as_t(frames)
    deter, stoch = model.initial(frames_t[:1], obs_t[:1])
    for t, action in enumerate(as_t(context_actions.astype(np.float32)), start=1):
        deter = model.rssm.step_deter(deter, stoch, action[None])
        stoch = model.posterior(deter, frames_t[t : t + 1], obs_t[t : t + 1])
    states, pred_frames, rewards = [], [], []
    for action in as_t(actions.astype(np.float32)):
        deter, stoch, _ = model.imagine(deter, stoch, action[None])
        feat = model.features(deter, stoch)
        states.append(model.decode_state(feat)[0])
        pred_frames.append(model.decode_frame(feat, frames_t[-1:])[0])
        rewards.append(model.reward(feat)[0])
    return tuple(torch.stack(x).cpu().numpy() for x in (states, pred_frames, rewards))  # type: ignore[return-value]


def check_settings(starts: int, horizon: int, context: int) -> None:
    """Raise a clear error for settings ``matched_rollouts`` cannot use (callers check before other work)."""
    if min(starts, horizon) < 1 or context < 0:
        raise ValueError(f"starts and horizon must be at least 1 and context at least 0, got {starts}, {horizon}, {context}")


def _restorable_step(raw: Any, episode: Episode, first: int, gym_id: str) -> int:
    """The first step from ``first`` on (wrapping round) that the episode went on from and whose recorded
    observation restoring its qpos/qvel reproduces. Not every one does: in some of Reacher's, the
    fingertip offset Gymnasium recorded differs from the one computed from the restored state by up
    to a few millimetres."""
    for t in (np.arange(len(episode)) + first) % len(episode):
        raw.set_state(episode.qpos[t], episode.qvel[t])
        if np.allclose(raw._get_obs(), episode.obs[t], atol=1e-5):
            return int(t)
    raise RuntimeError(f"{gym_id}: restoring qpos/qvel reproduced no recorded observation of an episode")


def matched_rollouts(
    model: WorldModel,
    task: Task,
    behaviour: Agent,
    sources: dict[str, Agent],
    starts: int = 16,
    horizon: int = 50,
    context: int = 5,
    seed: int = 0,
) -> list[Rollout]:
    """``starts`` start states, each rolled once per action source (see the module doc)."""
    check_settings(starts, horizon, context)
    env = make_real(task)
    raw = env.unwrapped
    rng = np.random.default_rng(seed)
    rollouts: list[Rollout] = []

    def behave(obs: np.ndarray) -> np.ndarray:
        return behaviour.act(obs, frame_for(behaviour, env))

    with closing(env), seeded(seed):  # env closed on errors too; seeded latents, the caller's generators untouched
        for i in range(starts):
            behaviour.reset(env)
            episode = run_episode(env, seed + i, behave)
            t0 = _restorable_step(raw, episode, int(rng.integers(0, len(episode))), task.gym_id)
            c0 = max(0, t0 - context)
            for name, agent in sources.items():
                raw.set_state(episode.qpos[t0], episode.qvel[t0])  # type: ignore[attr-defined]
                obs = raw._get_obs()  # type: ignore[attr-defined]
                agent.reset(env)
                real_obs, real_frames, actions, rewards = [obs], [np.asarray(env.render())], [], []
                for _ in range(horizon):
                    action = np.asarray(agent.act(obs, real_frames[-1] if agent.needs_frames else None), np.float32)
                    obs, reward, terminated = step_physics(raw, action.astype(np.float64), task.action_repeat)
                    real_obs.append(obs)
                    real_frames.append(np.asarray(env.render()))
                    actions.append(action)
                    rewards.append(reward)
                    if terminated:
                        break
                pred_obs, pred_frames, pred_rewards = _predict(
                    model, episode.obs[c0 : t0 + 1], episode.frames[c0 : t0 + 1], episode.actions[c0:t0], np.stack(actions)
                )
                rollouts.append(
                    Rollout(
                        source=name,
                        start_step=t0,
                        actions=np.stack(actions),
                        real_obs=np.stack(real_obs).astype(np.float32),
                        real_frames=np.stack(real_frames),
                        real_rewards=np.asarray(rewards, np.float32),
                        pred_obs=pred_obs,
                        pred_frames=pred_frames,
                        pred_rewards=pred_rewards,
                        last_reward=float(episode.rewards[t0 - 1]) if t0 > 0 else 0.0,
                    )
                )
    return rollouts


METRICS = ("state_error", "reward_error", "psnr", "ssim")


def horizon_curves(rollouts: list[Rollout], state_std: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """Per action source, each metric (and its copy-last baseline) at horizons 1, 2, ...: the mean over
    the rollouts still running at that horizon; ``count`` says how many that is."""
    curves: dict[str, dict[str, list[float]]] = {}
    for source in dict.fromkeys(r.source for r in rollouts):
        runs = [r for r in rollouts if r.source == source]
        longest = max(len(r.actions) for r in runs)
        per_h: dict[str, list[list[float]]] = {}
        for r in runs:
            real_f, pred_f = torch.as_tensor(r.real_frames[1:]), torch.as_tensor(r.pred_frames)
            first = torch.as_tensor(r.real_frames[:1]).expand_as(real_f)
            values = {
                "state_error": np.sqrt((((r.pred_obs - r.real_obs[1:]) / state_std) ** 2).mean(-1)),
                "state_error_copy_last": np.sqrt((((r.real_obs[:1] - r.real_obs[1:]) / state_std) ** 2).mean(-1)),
                "reward_error": np.abs(r.pred_rewards - r.real_rewards),
                "reward_error_copy_last": np.abs(r.last_reward - r.real_rewards),
                "psnr": psnr(pred_f, real_f).numpy(),
                "psnr_copy_last": psnr(first, real_f).numpy(),
                "ssim": ssim(pred_f, real_f).numpy(),
                "ssim_copy_last": ssim(first, real_f).numpy(),
            }
            for key, series in values.items():
                rows = per_h.setdefault(key, [[] for _ in range(longest)])
                for h, v in enumerate(series):
                    rows[h].append(float(v))
        curve = {key: [float(np.mean(v)) for v in rows] for key, rows in per_h.items()}
        curve["count"] = [float(len(v)) for v in per_h["psnr"]]
        curve["horizon"] = [float(h) for h in range(1, longest + 1)]
        curves[source] = curve
    return curves
