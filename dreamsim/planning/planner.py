"""CEM and MPPI over action sequences, batched: every candidate x horizon in one objective call.

A ``Planner`` optimises a ``(horizon, A)`` action plan against an ``Objective``: anything that scores
a batch of action sequences from a start state (the learned latent model, or MuJoCo itself). It
works in actions normalised to [-1, 1] and hands the objective actions in the env's units.
With ``warm_start`` (TD-MPC2) each ``plan`` call starts from the previous plan shifted by one step;
without it (PlaNet) from a zero mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch

METHODS = ("cem", "mppi")


class Objective(Protocol):
    """What a planner optimises: returns of action sequences from a start state."""

    action_low: torch.Tensor  # (A,)
    action_high: torch.Tensor  # (A,)
    device: torch.device

    def returns(self, start: Any, actions: torch.Tensor, discount: float, generator: torch.Generator) -> torch.Tensor:
        """Discounted return ``(S,)`` of each action sequence ``(S, H, A)`` (env units) from ``start``."""
        ...

    def policy_actions(
        self, start: Any, policy: Callable[..., torch.Tensor], count: int, horizon: int, generator: torch.Generator
    ) -> torch.Tensor:
        """``(count, horizon, A)`` env-unit actions from rolling ``policy`` through the model from ``start``."""
        ...


@dataclass(frozen=True)
class PlannerConfig:
    """Planner settings. Standard deviations are in normalised action units ([-1, 1] = the box).

    ``cem`` refits mean and std to the ``elites`` best candidates, equally weighted; ``mppi`` weights
    them by ``exp(temperature * (return - best))``. The executed action is the first step of the
    final mean. ``policy_samples`` candidates come from a policy prior when the planner has one.
    ``warm_start`` starts each call's mean from the previous plan shifted by one step.
    """

    method: str = "mppi"
    horizon: int = 3
    samples: int = 512
    elites: int = 64
    iterations: int = 6
    temperature: float = 0.5
    init_std: float = 2.0
    min_std: float = 0.05
    max_std: float = 2.0
    discount: float = 0.99
    policy_samples: int = 0
    warm_start: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown planning method {self.method!r}: choose one of {METHODS}")
        for name in ("horizon", "samples", "elites", "iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"planner {name} must be at least 1, got {getattr(self, name)}")
        if self.elites > self.samples + self.policy_samples:
            raise ValueError(f"elites ({self.elites}) cannot exceed the candidates ({self.samples} + {self.policy_samples})")
        if not 0 < self.min_std <= self.max_std or self.init_std <= 0:
            raise ValueError("planner stds must satisfy 0 < min_std <= max_std and init_std > 0")
        if self.temperature <= 0:
            raise ValueError(f"MPPI temperature must be positive (higher: greedier), got {self.temperature}")
        if not 0 < self.discount <= 1:
            raise ValueError(f"discount must lie in (0, 1], got {self.discount}")


PRESETS: dict[str, PlannerConfig] = {
    # PlaNet (Hafner et al. 2019): CEM, horizon 12, 1000 candidates, top 100, 10 iterations, from
    # mean 0 and std 1 at every step (its planner keeps no plan between steps).
    "planet-cem": PlannerConfig(
        method="cem",
        horizon=12,
        samples=1000,
        elites=100,
        iterations=10,
        init_std=1.0,
        min_std=1e-3,
        max_std=1.0,
        discount=1.0,
        warm_start=False,
    ),
    # TD-MPC2 (Hansen et al. 2024): MPPI, horizon 3, 512 samples, 64 elites, 6 iterations, temperature 0.5,
    # std from 2 down to at least 0.05 (their 24 policy trajectories need a policy: pass policy_samples).
    "tdmpc2-mppi": PlannerConfig(),
    # CEM's equal elite weights at the TD-MPC2 budget and std schedule: CEM at MPPI's cost.
    "tdmpc2-cem": PlannerConfig(method="cem"),
}


def planner_config(preset: str, **overrides: Any) -> PlannerConfig:
    """A named preset (``planet-cem``, ``tdmpc2-mppi``, ``tdmpc2-cem``) with optional field overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown planner preset {preset!r}: choose one of {sorted(PRESETS)}")
    return replace(PRESETS[preset], **overrides)


class Planner:
    """Model-predictive planner over ``objective``; ``plan(start)`` gives the next action ``(A,)``.

    ``policy`` (optional, as the objective expects it) adds ``config.policy_samples`` candidate
    sequences rolled out by that policy to every iteration's population.
    """

    def __init__(
        self,
        objective: Objective,
        config: PlannerConfig,
        seed: int = 0,
        policy: Callable[..., torch.Tensor] | None = None,
    ):
        if config.policy_samples and policy is None:
            raise ValueError("config.policy_samples > 0 needs a policy: pass policy=..., or set policy_samples=0")
        self.objective = objective
        self.config = config
        self.policy = policy
        self.device = objective.device
        self._center = (objective.action_high + objective.action_low).to(self.device) / 2
        self._scale = (objective.action_high - objective.action_low).to(self.device) / 2
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.plan_mean: torch.Tensor | None = None  # the last plan, normalised ``(H, A)``

    def reset(self) -> None:
        """Forget the previous plan (call at the start of an episode)."""
        self.plan_mean = None

    def to_env(self, normalised: torch.Tensor) -> torch.Tensor:
        return self._center + self._scale * normalised

    @torch.inference_mode()
    def plan(self, start: Any) -> torch.Tensor:
        """Optimise the plan from ``start`` and return its first action ``(A,)`` in env units."""
        cfg = self.config
        shape = (cfg.horizon, len(self._center))
        mean = torch.zeros(shape, device=self.device)
        if cfg.warm_start and self.plan_mean is not None:
            mean[:-1] = self.plan_mean[1:]
        std = torch.full(shape, cfg.init_std, device=self.device)
        prior = None
        if self.policy is not None and cfg.policy_samples:
            prior_env = self.objective.policy_actions(start, self.policy, cfg.policy_samples, cfg.horizon, self.generator)
            prior = ((prior_env.to(self.device) - self._center) / self._scale).clamp(-1, 1)
        for _ in range(cfg.iterations):
            noise = torch.randn((cfg.samples, *shape), generator=self.generator, device=self.device)
            candidates = (mean + std * noise).clamp(-1, 1)
            if prior is not None:
                candidates = torch.cat([prior, candidates])
            returns = self.objective.returns(start, self.to_env(candidates), cfg.discount, self.generator)
            returns = torch.nan_to_num(returns.float(), nan=-torch.inf)
            best, index = returns.topk(cfg.elites)
            elites = candidates[index]
            if cfg.method == "cem":
                weights = torch.full_like(best, 1.0 / cfg.elites)
            else:
                weights = torch.softmax(cfg.temperature * (best - best[0]), 0)
            mean = torch.einsum("e,eha->ha", weights, elites)
            var = torch.einsum("e,eha->ha", weights, (elites - mean).square())
            std = var.sqrt().clamp(cfg.min_std, cfg.max_std)
        self.plan_mean = mean
        return self.to_env(mean[0])
