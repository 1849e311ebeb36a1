"""Planners: known optima, the action box, untouched inputs, and the agents in the real envs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import GOAL

from dreamsim.cli import main
from dreamsim.control import RandomAgent, evaluate
from dreamsim.model import load_checkpoint
from dreamsim.planning import (
    Latent,
    LatentObjective,
    MPCAgent,
    MujocoObjective,
    Planner,
    PlannerConfig,
    TrueSimMPCAgent,
    physics_state,
    planner_config,
)
from dreamsim.resources import assets_dir
from dreamsim.stats import mean_ci95, plus_minus
from dreamsim.tasks import make_real

SMALL = {"horizon": 3, "samples": 64, "elites": 8, "iterations": 4}


class Quadratic:
    """Return ``-sum_h |a_h - target|^2``: the optimum is ``target`` at every step (clipped to the box)."""

    def __init__(self, target: list[float], low: list[float], high: list[float]):
        self.target = torch.tensor(target)
        self.action_low, self.action_high = torch.tensor(low), torch.tensor(high)
        self.device = torch.device("cpu")
        self.seen: list[torch.Tensor] = []

    def returns(self, start, actions, discount, generator):  # noqa: ANN001
        self.seen.append(actions.clone())
        return -(actions - self.target).square().sum((1, 2))

    def policy_actions(self, start, policy, count, horizon, generator):  # noqa: ANN001
        return policy(start).expand(count, horizon, -1)


@pytest.mark.parametrize("method", ["cem", "mppi"])
def test_planners_find_a_known_optimum_inside_the_box(method):
    objective = Quadratic([0.7, 0.3], low=[-2.0, 0.0], high=[2.0, 1.0])
    planner = Planner(objective, PlannerConfig(method=method, horizon=4, samples=256, elites=32, iterations=8))
    action = planner.plan(start=None)
    assert torch.allclose(action, objective.target, atol=0.05)
    assert torch.allclose(planner.to_env(planner.plan_mean), objective.target.expand(4, -1), atol=0.1)


@pytest.mark.parametrize("method", ["cem", "mppi"])
def test_every_candidate_and_action_lies_in_the_action_space(method):
    objective = Quadratic([5.0, -3.0], low=[-2.0, 0.0], high=[2.0, 1.0])  # optimum outside: the corner
    planner = Planner(objective, PlannerConfig(method=method, **SMALL))
    action = planner.plan(start=None)
    seen = torch.cat(objective.seen)
    assert (seen >= objective.action_low).all() and (seen <= objective.action_high).all()
    assert torch.allclose(action, torch.tensor([2.0, 0.0]), atol=0.1)


def test_policy_samples_join_the_population():
    """With one elite, one iteration and a policy that proposes the optimum, the plan is the policy's."""
    objective = Quadratic([0.25, -0.5], low=[-1.0, -1.0], high=[1.0, 1.0])
    config = PlannerConfig(method="cem", horizon=2, samples=8, elites=1, iterations=1, policy_samples=1)
    planner = Planner(objective, config, policy=lambda start: torch.tensor([[0.25, -0.5]]))
    assert torch.allclose(planner.plan(start=None), objective.target, atol=1e-6)
    with pytest.raises(ValueError, match="needs a policy"):
        Planner(objective, config)


def test_warm_start_shifts_the_previous_plan():
    objective = Quadratic([0.5, 0.5], low=[-1.0, -1.0], high=[1.0, 1.0])
    planner = Planner(objective, PlannerConfig(method="cem", horizon=3, samples=64, elites=8, iterations=3))
    planner.plan(start=None)
    first = planner.plan_mean.clone()
    objective.seen.clear()
    still = {"init_std": 1e-3, "min_std": 1e-4, "max_std": 1e-3}
    planner.config = PlannerConfig(method="cem", horizon=3, samples=64, elites=8, iterations=1, **still)
    planner.plan(start=None)
    # With a tiny std every candidate sits on the warm start: the old plan from step 1 on, then zero.
    assert torch.allclose(objective.seen[0][0, :2], planner.to_env(first[1:]), atol=0.01)
    # PlaNet's CEM keeps no plan between steps: every call starts from zero.
    objective.seen.clear()
    planner.config = PlannerConfig(method="cem", horizon=3, samples=64, elites=8, iterations=1, warm_start=False, **still)
    planner.plan(start=None)
    assert torch.allclose(objective.seen[0][0], planner.to_env(torch.zeros(3, 2)), atol=0.01)
    assert not planner_config("planet-cem").warm_start and planner_config("tdmpc2-mppi").warm_start
    planner.reset()
    assert planner.plan_mean is None


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="choose one of"):
        PlannerConfig(method="ilqr")
    with pytest.raises(ValueError, match="elites"):
        PlannerConfig(samples=16, elites=32)
    with pytest.raises(ValueError, match="temperature must be positive"):
        PlannerConfig(temperature=-0.5)  # would favour the worst elites
    with pytest.raises(ValueError, match="unknown planner preset"):
        planner_config("dreamer")
    assert planner_config("planet-cem").horizon == 12 and planner_config("tdmpc2-mppi", samples=128).samples == 128


def test_learned_model_planner_finds_the_optimum_of_a_learned_world(dot_run):
    """In the square world the reward is ``-|a - GOAL|``: a model-based plan must land near GOAL,
    which random actions miss by about 0.8 on average."""
    checkpoint, _ = dot_run
    model = load_checkpoint(checkpoint).model
    objective = LatentObjective(model, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    frame = torch.full((1, 16, 16, 3), 40, dtype=torch.uint8)
    deter, stoch = model.initial(frame, torch.tensor([[0.5, -0.5]]))
    start = Latent(deter.clone(), stoch.clone())
    before = (start.deter.clone(), start.stoch.clone())
    for method in ("cem", "mppi"):
        planner = Planner(objective, PlannerConfig(method=method, horizon=2, samples=256, elites=32, iterations=5))
        action = planner.plan(start)
        assert (action - torch.as_tensor(GOAL, dtype=torch.float32)).norm() < 0.3, f"{method} planned {action.tolist()}"
    assert torch.equal(start.deter, before[0]) and torch.equal(start.stoch, before[1])


def test_true_simulator_planner_balances_the_pendulum_and_leaves_the_state_alone():
    env = make_real("inverted_pendulum", render=False)
    random_lengths = evaluate("inverted_pendulum", RandomAgent(env.action_space, seed=0), episodes=3)["lengths"]
    agent = TrueSimMPCAgent("inverted_pendulum", PlannerConfig(method="mppi", **SMALL))
    result = evaluate("inverted_pendulum", agent, episodes=1, max_steps=40)
    assert max(random_lengths) < 40
    assert result["lengths"] == [40] and result["return_mean"] == 40.0

    env.reset(seed=3)
    start = physics_state(env)
    saved = start.copy()
    objective = MujocoObjective("inverted_pendulum")
    objective.returns(start, torch.zeros(4, 3, 1), 1.0, torch.Generator())
    assert np.array_equal(start, saved) and np.array_equal(physics_state(env), saved)


def test_mpc_agent_acts_in_the_real_env_from_frames_and_state(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint).model
    env = make_real("reacher", render=False)
    agent = MPCAgent(model, env.action_space, PlannerConfig(method="mppi", **SMALL), seed=1)
    result = evaluate("reacher", agent, episodes=1, max_steps=4)
    assert result["lengths"] == [4] and np.isfinite(result["return_mean"]) and result["ms_per_action"] > 0
    with pytest.raises(ValueError, match="needs the real frame"):
        agent.act(np.zeros(10, np.float32), None)
    frame = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match=r"finite state observation of shape \(10,\)"):
        agent.act(np.full(10, np.nan, np.float32), frame)
    with pytest.raises(ValueError, match=r"shape \(10,\), got \(5,\)"):
        agent.act(np.zeros(5, np.float32), frame)


def test_noisy_collection_tells_the_mpc_agent_the_action_that_ran(tiny_checkpoint, tmp_path, monkeypatch):
    """The agent's next latent must follow the action MuJoCo ran (noise included), not the planned one."""
    from dreamsim.data import EpisodeStore, collect_with_agent

    model = load_checkpoint(tiny_checkpoint).model
    cheap = PlannerConfig(method="mppi", horizon=1, samples=4, elites=2, iterations=1)  # a whole 50-step episode
    agent = MPCAgent(model, make_real("reacher", render=False).action_space, cheap)
    followed = []
    real_observe = MPCAgent.observe

    def observe(self, obs, frame):
        if self._last_action is not None:
            followed.append(self._last_action.numpy().copy())
        return real_observe(self, obs, frame)

    monkeypatch.setattr(MPCAgent, "observe", observe)
    collect_with_agent("reacher", tmp_path, 4, agent, noise=0.5, seed=0)
    ran = np.concatenate([e.actions for e in EpisodeStore(tmp_path).episodes()])
    assert len(followed) >= 3 and np.array_equal(np.stack(followed), ran[: len(followed)])


def test_plan_cli_writes_the_benchmark_json(tiny_checkpoint, tmp_path, capsys):
    args = ["plan", "reacher", "--rows", "random", "learned-mppi", "--mppi-preset", "tdmpc2-mppi"]
    args += ["--episodes", "2", "--max-steps", "2", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path)]
    assert main(args) == 0
    result = json.loads((tmp_path / "planning-reacher-cpu.json").read_text())
    assert set(result["rows"]) == {"random", "learned-mppi"}
    weights = hashlib.sha256((tiny_checkpoint / "model.safetensors").read_bytes()).hexdigest()
    assert result["checkpoint"]["weights_sha256"] == weights  # the model the learned row planned with
    assert all(r["lengths"] == [2, 2] for r in result["rows"].values())
    assert "| MPPI | DreamSim | tdmpc2-mppi |" in (tmp_path / "planning-reacher-cpu.md").read_text()
    capsys.readouterr()
    assert main(["plan", "reacher", "--rows", "random", "learned-cem", "--cem-preset", "tdmpc2-mppi", "--episodes", "1"]) == 2
    printed = capsys.readouterr()
    assert "row 'learned-cem' needs a cem preset" in printed.err and "random:" not in printed.out  # before any row ran


def test_plan_horizon_overrides_the_presets_and_keeps_their_results(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    horizons = []
    monkeypatch.setattr(MPCAgent, "__init__", _record_horizon(MPCAgent.__init__, horizons))
    args = ["plan", "reacher", "--rows", "learned-cem", "learned-mppi", "--cem-preset", "tdmpc2-cem", "--horizon", "5"]
    args += ["--episodes", "1", "--max-steps", "2", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path)]
    assert main(args) == 0
    assert horizons == [5, 5]
    assert not (tmp_path / "planning-reacher-cpu.json").exists()
    assert json.loads((tmp_path / "planning-reacher-h5-cpu.json").read_text())["config"]["horizon"] == 5
    assert "| MPPI | DreamSim | tdmpc2-mppi, horizon 5 |" in (tmp_path / "planning-reacher-h5-cpu.md").read_text()
    assert main(["plan", "reacher", "--rows", "learned-mppi", "--horizon", "0"]) == 2
    assert "horizon must be at least 1" in capsys.readouterr().err


def _record_horizon(init, horizons):
    def wrapped(self, model, action_space, config, *args, **kwargs):
        horizons.append(config.horizon)
        init(self, model, action_space, config, *args, **kwargs)

    return wrapped


def test_mean_ci95_uses_student_t():
    mean, half = mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 / np.sqrt(3), rel=1e-3)
    mean, half = mean_ci95([5.0])
    assert mean == 5.0 and np.isnan(half)  # one sample has no spread to speak of
    # Past the table: t(31) = 2.0395, t(60) = 2.0003, t(120) = 1.9799 (exact quantiles).
    from dreamsim.stats import t95

    assert [t95(df) for df in (31, 60, 120)] == pytest.approx([2.0395, 2.0003, 1.9799], abs=1e-3)


def test_results_without_an_interval_stay_readable(tmp_path):
    from dreamsim.files import write_json

    assert plus_minus(-5.271, 1.432) == "-5.27 ± 1.43" and plus_minus(3.0, 0.25, "+.1f") == "+3.0 ± 0.2"
    assert plus_minus(-5.271, float("nan")) == plus_minus(-5.271, None) == "-5.27"  # in memory, and from JSON
    path = write_json(tmp_path / "r.json", {"ci": [float("nan"), (float("inf"), 1.5)], "n": 1})
    assert json.loads(path.read_text(), parse_constant=pytest.fail) == {"ci": [None, [None, 1.5]], "n": 1}


def test_terminal_value_is_added_after_the_horizon(dot_run, monkeypatch):
    checkpoint, _ = dot_run
    model = load_checkpoint(checkpoint).model
    monkeypatch.setattr(model, "continue_prob", lambda feat: torch.full((len(feat),), 0.5))
    low, high = torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0])
    deter, stoch = model.initial(torch.full((1, 16, 16, 3), 40, dtype=torch.uint8), torch.tensor([[0.0, 0.0]]))
    actions = torch.rand(10, 3, 2) * 2 - 1
    plain = LatentObjective(model, low, high).returns(Latent(deter, stoch), actions, 0.9, torch.Generator().manual_seed(1))
    valued = LatentObjective(model, low, high, value=lambda feat: torch.full((len(feat),), 5.0))
    bonus = valued.returns(Latent(deter, stoch), actions, 0.9, torch.Generator().manual_seed(1)) - plain
    # The same noise gives the same rollouts: the only change is the value after the horizon,
    # discounted 3 steps and weighed by P(still going after 3 steps) = 0.5**3.
    torch.testing.assert_close(bonus, torch.full((10,), 0.9**3 * 0.5**3 * 5.0), atol=1e-4, rtol=0)


def test_policy_prior_rolls_through_the_learned_model_within_the_box(dot_run):
    checkpoint, _ = dot_run
    model = load_checkpoint(checkpoint).model
    objective = LatentObjective(model, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    deter, stoch = model.initial(torch.full((1, 16, 16, 3), 40, dtype=torch.uint8), torch.tensor([[0.0, 0.0]]))
    seen = []

    def policy(feat):  # noqa: ANN001, ANN202
        seen.append(feat.shape)
        return torch.tensor([5.0, 0.25]).expand(len(feat), -1)

    actions = objective.policy_actions(Latent(deter, stoch), policy, 7, 3, torch.Generator().manual_seed(0))
    assert actions.shape == (7, 3, 2) and torch.equal(actions[..., 0], torch.ones(7, 3))
    assert len(seen) == 3 and seen[0][1] == model.cfg.latent_dim


@pytest.mark.parametrize("count", [1, 2, 7])
def test_latent_objective_scores_any_number_of_candidates(count):
    """Candidates are padded to a multiple of the ensemble's heads (5 in the shipped model) and cut back."""
    model = load_checkpoint(Path(assets_dir()) / "reacher").model
    objective = LatentObjective(model, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    deter, stoch = model.rssm.initial(1, torch.device("cpu"))
    returns = objective.returns(Latent(deter, stoch), torch.zeros(count, 3, 2), 1.0, torch.Generator().manual_seed(0))
    assert returns.shape == (count,) and torch.isfinite(returns).all()


def test_padded_candidates_keep_their_own_returns():
    """7 candidates are scored as 10 rows (two per head); each of the 7 keeps the return its row gets
    when the 10 rows are all real candidates."""
    model = load_checkpoint(Path(assets_dir()) / "reacher").model
    objective = LatentObjective(model, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    start = Latent(*model.rssm.initial(1, torch.device("cpu")))
    actions = torch.rand(10, 3, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ten = objective.returns(start, actions, 1.0, torch.Generator().manual_seed(0))
    seven = objective.returns(start, actions[:7], 1.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(seven, ten[:7])
    assert ten.unique().numel() == 10  # the candidates' returns differ, so a shifted row would show
