"""Agents trained in DreamSim: the recipes run end to end and write what they promise."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO, SAC

from dreamsim.imagination import DreamTrainConfig

RECIPES = Path(__file__).resolve().parents[1] / "agents"


@pytest.mark.parametrize(("recipe", "algo"), [("sac_in_dream.py", SAC), ("ppo_in_dream.py", PPO)])
def test_recipe_trains_in_dream_and_reports_real_returns(recipe, algo, tiny_checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "run"
    argv = [recipe, "reacher", "--steps", "256", "--num-envs", "4", "--eval-every", "128", "--eval-episodes", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--checkpoint", str(tiny_checkpoint), "--out", str(out)])
    runpy.run_path(str(RECIPES / recipe), run_name="__main__")
    summary = json.loads((out / "returns.json").read_text())
    assert [h["dream_steps"] for h in summary["history"]] == [128, 256]
    for result in (*summary["history"], summary["random"]):
        assert len(result["returns"]) == 2 and result["lengths"] == [50, 50]
        assert np.isfinite(result["return_mean"]) and -200 < result["return_mean"] <= 0  # Reacher rewards are <= 0
    assert summary["real_env_steps_for_training"] == 0
    policy = algo.load(out / "policy.zip", device="cpu")
    assert policy.observation_space.shape == (10,)
    assert list((out / "tb").rglob("events.out.tfevents.*"))


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="choose one of"):
        DreamTrainConfig(algo="dqn")
    with pytest.raises(ValueError, match="at least 1"):
        DreamTrainConfig(steps=0)
