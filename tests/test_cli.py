import json

import numpy as np
import pytest

from dreamsim.cli import main
from dreamsim.data import EpisodeStore
from dreamsim.resources import assets_dir
from dreamsim.validation.demo import run_demo


def test_collect_train_resume_validate_from_the_command_line(tmp_path, capsys):
    episodes, run = tmp_path / "episodes", tmp_path / "run"
    assert main(["collect", "reacher", "--steps", "100", "--workers", "1", "--seed", "3", "--out", str(episodes)]) == 0
    args = ["train", "reacher", "--episodes", str(episodes), "--out", str(run), "--preset", "tiny"]
    small = ["--batch-size", "2", "--seq-len", "4", "--eval-every", "2", "--eval-episodes", "1"]
    assert main([*args, *small, "--steps", "2"]) == 0
    assert main([*args, *small, "--steps", "3", "--resume"]) == 0
    assert json.loads((run / "checkpoint" / "config.json").read_text())["training"]["steps"] == 3
    report = tmp_path / "report"
    assert main(["validate", str(run / "checkpoint"), "--episodes", str(episodes), "--out", str(report)]) == 0
    metrics = json.loads((report / "fidelity.json").read_text())
    assert metrics["episodes"] == 2 and 0 < metrics["open_loop/1/psnr"] < 100
    assert "open-loop h=50" in (report / "fidelity.md").read_text()


def test_cli_errors_name_the_problem(capsys):
    assert main(["collect", "walker", "--steps", "10"]) == 2
    assert "unknown task 'walker'" in capsys.readouterr().err


def test_demo_writes_video_summary_and_the_agent_trained_in_dream(tiny_checkpoint, tmp_path):
    summary = run_demo("reacher", tmp_path, steps=10, checkpoint=tiny_checkpoint, agent_steps=64, episodes=2)
    assert (tmp_path / "side_by_side.mp4").stat().st_size > 1000
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["steps"] >= 1 and "1" in data["horizons"]
    agent = data["agent"]
    assert agent["dream_steps"] == 64 and agent["real_env_steps_for_training"] == 0
    for policy in ("trained", "random", "constant"):
        assert agent[policy]["lengths"] == [50, 50] and agent[policy]["return_mean"] <= 0
    assert (tmp_path / "agent" / "policy.zip").is_file()
    text = summary.read_text()
    assert "MuJoCo" in text and "SAC trained in DreamSim only" in text


@pytest.mark.skipif(not (assets_dir() / "reacher" / "config.json").is_file(), reason="no shipped reacher checkpoint")
def test_demo_on_the_shipped_default(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--steps", "20", "--agent-steps", "0"]) == 0
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["steps"] == 20


def test_collect_with_the_mpc_policy(tiny_checkpoint, tmp_path):
    args = ["collect", "reacher", "--policy", "mpc", "--steps", "10", "--checkpoint", str(tiny_checkpoint)]
    assert main([*args, "--seed", "0", "--out", str(tmp_path)]) == 0
    (episode,) = EpisodeStore(tmp_path).episodes()
    assert len(episode) == 50 and (np.abs(episode.actions) <= 1.0).all()
