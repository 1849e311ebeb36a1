"""What the planners optimise: returns of action sequences in the learned latent model, or in MuJoCo.

``LatentObjective`` rolls all candidates through the world model's prior in one batch per step and
scores them by predicted reward, weighted by the predicted probability that the episode is still
going, plus an optional terminal value. Each candidate follows one prior head of the ensemble for its
whole horizon (PETS-style trajectory sampling), so the ensemble costs no more than a single head.

``MujocoObjective`` is the ceiling: the same scores from the true simulator, restoring the real
physics state and stepping MuJoCo for every candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
import torch

from dreamsim.model.world_model import WorldModel
from dreamsim.tasks import load_task, make_real


@dataclass(frozen=True)
class Latent:
    """One latent state: ``deter (1, deter)`` and ``stoch (1, stoch, classes)``."""

    deter: torch.Tensor
    stoch: torch.Tensor


class LatentObjective:
    """Predicted returns in ``model``'s latent space. ``value(feat (S, F)) -> (S,)`` adds a terminal
    value after the last step; a policy for policy-prior samples maps ``feat (S, F)`` to actions."""

    def __init__(
        self,
        model: WorldModel,
        action_low: torch.Tensor,
        action_high: torch.Tensor,
        value: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.action_low = torch.as_tensor(action_low, dtype=torch.float32, device=self.device)
        self.action_high = torch.as_tensor(action_high, dtype=torch.float32, device=self.device)
        self.value = value

    def _step(
        self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One prior step of rows grouped by ensemble head: ``(deter, stoch, feat)``."""
        rssm = self.model.rssm
        deter = rssm.step_deter(deter, stoch, action)
        logits = rssm.prior_logits(deter, grouped=True)
        uniform = torch.rand(logits.shape, generator=generator, device=self.device)
        stoch = rssm.sample(logits, uniform)
        return deter, stoch, self.model.features(deter, stoch)

    @torch.inference_mode()
    def returns(self, start: Latent, actions: torch.Tensor, discount: float, generator: torch.Generator) -> torch.Tensor:
        count, horizon = actions.shape[:2]
        heads = self.model.cfg.ensemble
        rows = -(-count // heads) * heads  # pad to a multiple of the heads; extra rows are dropped
        actions = actions.to(self.device, torch.float32)
        if rows > count:
            actions = torch.cat([actions, actions[:1].expand(rows - count, -1, -1)])
        deter = start.deter.expand(rows, -1)
        stoch = start.stoch.expand(rows, -1, -1)
        total = torch.zeros(rows, device=self.device)
        alive = torch.ones(rows, device=self.device)
        feat = self.model.features(deter, stoch)
        for h in range(horizon):
            deter, stoch, feat = self._step(deter, stoch, actions[:, h], generator)
            total += discount**h * alive * self.model.reward(feat)
            alive = alive * self.model.continue_prob(feat)
        if self.value is not None:
            total += discount**horizon * alive * self.value(feat).float().reshape(rows)
        return total[:count]

    @torch.inference_mode()
    def policy_actions(
        self, start: Latent, policy: Callable[..., torch.Tensor], count: int, horizon: int, generator: torch.Generator
    ) -> torch.Tensor:
        heads = self.model.cfg.ensemble
        rows = -(-count // heads) * heads
        deter, stoch = start.deter.expand(rows, -1), start.stoch.expand(rows, -1, -1)
        out = []
        for _ in range(horizon):
            action = torch.as_tensor(policy(self.model.features(deter, stoch)), dtype=torch.float32, device=self.device)
            action = torch.maximum(torch.minimum(action, self.action_high), self.action_low)
            out.append(action)
            deter, stoch, _ = self._step(deter, stoch, action, generator)
        return torch.stack(out, 1)[:count]


def physics_state(env: object) -> np.ndarray:
    """The full MuJoCo physics state of a Gymnasium MuJoCo env (any wrappers): time, qpos, qvel, act, ..."""
    raw = env.unwrapped  # type: ignore[attr-defined]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.empty(mujoco.mj_stateSize(raw.model, spec))
    mujoco.mj_getState(raw.model, raw.data, state, spec)
    return state


def step_physics(raw: Any, action: np.ndarray, repeat: int) -> tuple[np.ndarray, float, bool]:
    """One agent step of an unwrapped MuJoCo env (no time limit): ``action`` ``repeat`` times,
    rewards summed, stopping at termination. Returns ``(obs, reward, terminated)``."""
    total = 0.0
    obs: np.ndarray = np.empty(0)
    for _ in range(repeat):
        obs, reward, terminated, _, _ = raw.step(action)
        total += float(reward)
        if terminated:
            return obs, total, True
    return obs, total, False


class MujocoObjective:
    """True returns in MuJoCo: every candidate restores the start physics state and steps the task's
    own Gymnasium env (its reward and termination), with the card's action repeat. CPU, sequential."""

    def __init__(self, task: str):
        self.task = load_task(task)
        self.env = make_real(self.task, render=False)
        self.raw = self.env.unwrapped
        self.device = torch.device("cpu")
        self.action_low = torch.as_tensor(self.env.action_space.low, dtype=torch.float32)  # type: ignore[attr-defined]
        self.action_high = torch.as_tensor(self.env.action_space.high, dtype=torch.float32)  # type: ignore[attr-defined]
        self.env.reset(seed=0)

    def _restore(self, start: np.ndarray) -> None:
        raw = self.raw
        mujoco.mj_setState(raw.model, raw.data, start, mujoco.mjtState.mjSTATE_FULLPHYSICS)  # type: ignore[attr-defined]
        mujoco.mj_forward(raw.model, raw.data)  # type: ignore[attr-defined]

    def _step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        return step_physics(self.raw, action, self.task.action_repeat)

    def returns(self, start: np.ndarray, actions: torch.Tensor, discount: float, generator: torch.Generator) -> torch.Tensor:
        acts = actions.detach().cpu().numpy().astype(np.float64)
        out = np.zeros(len(acts))
        for i, sequence in enumerate(acts):
            self._restore(start)
            for h, action in enumerate(sequence):
                _, reward, terminated = self._step(action)
                out[i] += discount**h * reward
                if terminated:
                    break
        return torch.as_tensor(out, dtype=torch.float32)

    def policy_actions(
        self, start: np.ndarray, policy: Callable[..., torch.Tensor], count: int, horizon: int, generator: torch.Generator
    ) -> torch.Tensor:
        """``policy(obs (1, D)) -> (1, A)`` rolled from ``start`` (deterministic physics: one rollout, repeated)."""
        self._restore(start)
        obs = self.raw._get_obs()  # type: ignore[attr-defined]
        actions = []
        for _ in range(horizon):
            action = torch.as_tensor(policy(torch.as_tensor(obs, dtype=torch.float32)[None]), dtype=torch.float32).reshape(-1)
            action = torch.maximum(torch.minimum(action, self.action_high), self.action_low)
            actions.append(action)
            obs, _, terminated = self._step(action.numpy().astype(np.float64))
            if terminated:
                break
        while len(actions) < horizon:
            actions.append(actions[-1])
        return torch.stack(actions)[None].expand(count, -1, -1).clone()

    def close(self) -> None:
        self.env.close()
