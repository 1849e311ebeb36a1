"""Agents trained in DreamSim: the recipes run end to end and write what they promise."""

from __future__ import annotations

import json
import runpy
import sys
from dataclasses import make_dataclass, replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv
from stable_baselines3 import PPO, SAC

from dreamsim.cli import main
from dreamsim.data import EpisodeStore
from dreamsim.imagination import FRAME_BUFFER, DreamTrainConfig, load_policy, train_in_dream
from dreamsim.recipes import result_line
from dreamsim.tasks import load_task

RECIPES = Path(__file__).resolve().parents[1] / "agents"


@pytest.mark.parametrize(("recipe", "algo"), [("sac_in_dream.py", SAC), ("ppo_in_dream.py", PPO)])
def test_recipe_trains_in_dream_and_reports_real_returns(recipe, algo, tiny_checkpoint, tmp_path, monkeypatch, tensorboard_tags):
    out = tmp_path / "run"
    argv = [recipe, "reacher", "--steps", "256", "--num-envs", "4", "--eval-every", "128", "--eval-episodes", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--checkpoint", str(tiny_checkpoint), "--out", str(out)])
    real_steps = []
    real_step = ReacherEnv.step
    monkeypatch.setattr(ReacherEnv, "step", lambda self, action: real_steps.append(1) or real_step(self, action))
    runpy.run_path(str(RECIPES / recipe), run_name="__main__")
    summary = json.loads((out / "returns.json").read_text())
    # MuJoCo stepped only for the evaluations: the agent learned from DreamSim alone.
    assert len(real_steps) == sum(sum(r["lengths"]) for r in (*summary["history"], summary["random"]))
    assert [h["dream_steps"] for h in summary["history"]] == [128, 256]
    for result in (*summary["history"], summary["random"]):
        assert len(result["returns"]) == 2 and result["lengths"] == [50, 50]
        assert np.isfinite(result["return_mean"]) and -200 < result["return_mean"] <= 0  # Reacher rewards are <= 0
    assert summary["real_env_steps_for_training"] == 0 and summary["machine"]["cpu_count"] >= 1
    policy = load_policy(out / "policy.zip")  # tells the algorithm from the zip alone
    assert isinstance(policy, algo) and policy.observation_space.shape == (10,)
    assert {"real/return", "real/return_ci95", "rollout/ep_rew_mean"} <= tensorboard_tags(out / "tb")  # dream returns too


@pytest.mark.parametrize(("algo", "obs_mode"), [("ppo", "pixels"), ("sac", "dict")])
def test_a_policy_trained_on_frames_is_scored_in_mujoco_and_runs_there(tiny_checkpoint, tmp_path, algo, obs_mode):
    import dreamsim
    from dreamsim.control import PolicyAgent
    from dreamsim.model import load_checkpoint
    from dreamsim.validation.matched import matched_rollouts
    from dreamsim.validation.transfer import transfer_gap

    small = {"n_steps": 16, "batch_size": 64} if algo == "ppo" else {"learning_starts": 16, "batch_size": 16}
    config = DreamTrainConfig(
        algo=algo, obs_mode=obs_mode, steps=64, num_envs=4, eval_every=64, eval_episodes=1, checkpoint=str(tiny_checkpoint)
    )
    summary = train_in_dream("reacher", tmp_path / "run", replace(config, algo_kwargs=small), progress=False)
    assert summary["final"]["lengths"] == [50] and -200 < summary["final"]["return_mean"] <= 0
    policy = load_policy(tmp_path / "run" / "policy.zip", "reacher")
    assert PolicyAgent(policy).needs_frames
    if algo == "sac":
        assert policy.buffer_size == FRAME_BUFFER  # not SB3's million frames
    with dreamsim.make_real("reacher", obs_mode=obs_mode) as env:
        obs, _ = env.reset(seed=0)
        action, _ = policy.predict(obs, deterministic=True)
        assert env.action_space.contains(action)
    agent = PolicyAgent(policy)  # validate's two parts: matched-state rollouts and the transfer gap
    model = load_checkpoint(tiny_checkpoint).model
    rollouts = matched_rollouts(model, load_task("reacher"), agent, {"policy": agent}, starts=1, horizon=3)
    assert rollouts[0].actions.shape == (3, 2)
    gap = transfer_gap(load_task("reacher"), {"policy": agent}, episodes=2, checkpoint=tiny_checkpoint)
    assert np.isfinite(gap["policy"]["dream_mean"]) and np.isfinite(gap["policy"]["real_mean"])
    with pytest.raises(ValueError, match=f"observes {obs_mode}, not state: pass obs_mode='{obs_mode}'"):
        train_in_dream(
            "reacher", tmp_path / "more", replace(config, obs_mode="state", init_policy=str(tmp_path / "run" / "policy.zip"))
        )


def test_one_evaluation_episode_gives_strict_json_and_a_table_without_an_interval(tiny_checkpoint, tmp_path, capsys):
    """One episode has no confidence interval: ``returns.json`` says null (not NaN, which strict
    JSON readers refuse) and the printed result gives the mean alone."""
    out = tmp_path / "run"
    recipe = runpy.run_path(str(RECIPES / "sac_in_dream.py"))  # imported, not run: its Args and main
    args = recipe["Args"](steps=64, num_envs=4, eval_every=64, eval_episodes=1, checkpoint=str(tiny_checkpoint), out=str(out))
    returned = recipe["main"](args)
    summary = json.loads((out / "returns.json").read_text(), parse_constant=pytest.fail)  # NaN/Infinity fail
    assert returned["final"]["return_mean"] == summary["final"]["return_mean"] and summary["config"]["algo"] == "sac"
    assert summary["final"]["return_ci95"] is None and np.isfinite(summary["final"]["return_mean"])
    assert capsys.readouterr().out == ""  # main returns the summary; the command line prints its line
    line = result_line(returned)
    assert f"DreamSim steps: {summary['final']['return_mean']:.2f} (random policy" in line and "nan" not in line


def test_a_recipe_reports_bad_settings_as_usage_errors(tmp_path, monkeypatch, capsys):
    argv = ["sac_in_dream.py", "reacher", "--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "run")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(RECIPES / "sac_in_dream.py"), run_name="__main__")
    assert exit_.value.code == 2 and "no checkpoint at" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").write_text("")
    monkeypatch.setattr(sys, "argv", ["sac_in_dream.py", "reacher", "--out", str(tmp_path / "run")])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(RECIPES / "sac_in_dream.py"), run_name="__main__")
    assert exit_.value.code == 2 and "is a file: pass a folder" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["sac_in_dream.py", "--seed", "-1", "--out", str(tmp_path / "other")])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(RECIPES / "sac_in_dream.py"), run_name="__main__")
    assert exit_.value.code == 2 and "seed must be 0 or more, got -1" in capsys.readouterr().err
    argv = ["sac_in_dream.py", "--init-policy", str(tmp_path / "gone.zip"), "--out", str(tmp_path / "go-on")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(RECIPES / "sac_in_dream.py"), run_name="__main__")
    assert exit_.value.code == 2 and f"no policy at {tmp_path / 'gone.zip'}" in capsys.readouterr().err
    assert not (tmp_path / "go-on").exists()
    monkeypatch.setattr(sys, "argv", ["ppo_in_dream.py", "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(RECIPES / "ppo_in_dream.py"), run_name="__main__")
    usage = capsys.readouterr().out
    assert "(default: 200000)" in usage and "runs/ppo-in-dream-<task>" in usage  # the recipe's own budget and folder
    assert exit_.value.code == 0


def test_a_recipe_of_ones_own_parses_numbers_as_numbers():
    """Option types come from the resolved hints, whether the recipe's annotations are types or,
    under ``from __future__ import annotations``, their names."""
    from dreamsim.recipes import RecipeArgs, _parser

    Args = make_dataclass("Args", [("steps", int, 100)], bases=(RecipeArgs,), frozen=True)  # a real int, not "int"
    args = _parser(Args, "").parse_args(["hopper", "--steps", "5", "--uncertainty-penalty", "0.5", "--max-episode-steps", "7"])
    assert (args.task, args.steps, args.uncertainty_penalty, args.max_episode_steps) == ("hopper", 5, 0.5, 7)


@pytest.mark.parametrize("script", ["transfer.py", "sac_real.py"])
def test_benchmark_scripts_refuse_a_negative_seed(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, "reacher", "--seed", "-1"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(RECIPES.parent / "benchmarks" / script), run_name="__main__")
    assert exit_.value.code == 2 and "--seed must be 0 or more, got -1" in capsys.readouterr().err


def test_sac_real_scores_the_policy_every_eval_step_and_at_the_end(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # it writes benchmarks/results/ under the working directory
    argv = ["sac_real.py", "reacher", "--steps", "120", "--num-envs", "2", "--eval-every", "100", "--episodes", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(RECIPES.parent / "benchmarks" / "sac_real.py"), run_name="__main__")
    result = json.loads((tmp_path / "benchmarks/results/sac-real-reacher-cpu.json").read_text())
    assert result["real_steps"] == 120 and [h["real_steps"] for h in result["history"]] == [100, 120]
    assert all(h["lengths"] == [50, 50] and -200 < h["return_mean"] <= 0 for h in result["history"])


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="choose one of"):
        DreamTrainConfig(algo="dqn")
    with pytest.raises(ValueError, match="at least 1"):
        DreamTrainConfig(steps=0)
    with pytest.raises(ValueError, match="at least 1"):
        DreamTrainConfig(max_episode_steps=0)


def test_a_continued_policy_must_be_of_the_algo_asked_for(tmp_path):
    SAC("MlpPolicy", "Pendulum-v1").save(tmp_path / "sac.zip")
    config = DreamTrainConfig(algo="ppo", init_policy=str(tmp_path / "sac.zip"))
    with pytest.raises(ValueError, match="holds a SAC policy, not ppo: pass algo='sac'"):
        train_in_dream("reacher", tmp_path / "run", config, progress=False)
    with pytest.raises(ValueError, match="pass a policy trained on reacher"):  # Pendulum's, not Reacher's
        train_in_dream("reacher", tmp_path / "run", replace(config, algo="sac"), progress=False)
    assert not (tmp_path / "run").exists()


def test_a_continued_sac_agent_refills_its_replay_buffer_before_it_updates(tiny_checkpoint, tmp_path):
    """SB3 saves no replay buffer: a continued SAC agent waits ``learning_starts`` steps again, as a
    new one does, instead of drawing its batches from the first few transitions."""
    config = DreamTrainConfig(
        steps=64, num_envs=4, eval_every=64, eval_episodes=1, checkpoint=str(tiny_checkpoint),
        algo_kwargs={"learning_starts": 32, "batch_size": 16},
    )  # fmt: skip
    train_in_dream("reacher", tmp_path / "first", config, progress=False)
    updates = load_policy(tmp_path / "first" / "policy.zip")._n_updates
    assert updates > 0
    more = replace(config, steps=32, init_policy=str(tmp_path / "first" / "policy.zip"))
    train_in_dream("reacher", tmp_path / "more", more, progress=False)
    continued = load_policy(tmp_path / "more" / "policy.zip")
    assert continued.num_timesteps == 96 and continued._n_updates == updates  # 32 steps of warm-up, no update
    train_in_dream("reacher", tmp_path / "again", replace(more, steps=64), progress=False)
    assert load_policy(tmp_path / "again" / "policy.zip")._n_updates > updates  # then it learns again
    bigger = replace(more, algo_kwargs={"learning_starts": 32, "batch_size": 64})  # not the saved 16: refused
    with pytest.raises(ValueError, match="saved with batch_size=16, not 64: .* drop batch_size from algo_kwargs"):
        train_in_dream("reacher", tmp_path / "bigger", bigger, progress=False)
    assert not (tmp_path / "bigger").exists()


def test_load_policy_refuses_other_algorithms(tmp_path):
    from stable_baselines3 import DQN, TD3

    TD3("MlpPolicy", "Pendulum-v1").save(tmp_path / "td3.zip")
    DQN("MlpPolicy", "CartPole-v1").save(tmp_path / "dqn.zip")  # saves target_update_interval, as SAC does
    for other in ("td3.zip", "dqn.zip"):
        with pytest.raises(ValueError, match="another algorithm; DreamSim loads"):
            load_policy(tmp_path / other)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a Stable-Baselines3 model zip"):
        load_policy(tmp_path / "junk.zip")
    SAC("MlpPolicy", "Pendulum-v1").save(tmp_path / "pendulum.zip")  # observations (3,), Reacher's are (10,)
    assert isinstance(load_policy(tmp_path / "pendulum.zip"), SAC)
    wrong = r"state observations and actions of shapes \(3,\), \(1,\); reacher's are \(10,\), \(2,\): pass a policy"
    with pytest.raises(ValueError, match=wrong):
        load_policy(tmp_path / "pendulum.zip", "reacher")
    (tmp_path / "run").mkdir()
    (tmp_path / "pendulum.zip").rename(tmp_path / "run" / "policy.zip")
    with pytest.raises(FileNotFoundError, match="is a run folder, not a policy: did you mean .*policy.zip"):
        load_policy(tmp_path / "run")


def test_agent_trained_in_imagination_beats_random_in_the_real_world(dot_run):
    """The square world's best action is GOAL from any state: SAC trained only on the learned model
    must come much closer to it in the real env than random actions or the untrained policy's zero."""
    from synthetic import DOT_TASK

    from dreamsim.control import ConstantAgent, evaluate

    checkpoint, _ = dot_run
    config = DreamTrainConfig(
        steps=3_000, num_envs=8, eval_every=3_000, eval_episodes=5, checkpoint=str(checkpoint),
        algo_kwargs={"learning_starts": 400, "batch_size": 256},
    )  # fmt: skip
    summary = train_in_dream(DOT_TASK, dot_run[0].parent / "sac", config, progress=False)
    trained, random = summary["final"]["return_mean"], summary["random"]["return_mean"]
    env = gym.make("DotWorld-v0")
    zero = evaluate(DOT_TASK, ConstantAgent(env.action_space), 5, seed=10_000)["return_mean"]
    # Per 20-step episode: the optimum is 0, a zero action about -11, random actions about -16.
    assert trained > 0.5 * zero and trained > 0.5 * random, (trained, zero, random)


def test_dyna_loop_runs_resumes_and_extends(tmp_path, tensorboard_tags, capsys):
    """Two iterations, then a rerun that asks for three: only the third runs, on top of the first two."""
    out = tmp_path / "loop"
    args = ["loop", "reacher", "--out", str(out), "--initial-steps", "100", "--collect-steps", "50"]
    tiny = ["--model-steps", "2", "--agent-steps", "64", "--num-envs", "4", "--eval-episodes", "2", "--workers", "1"]
    tiny += ["--preset", "tiny", "--batch-size", "2", "--seq-len", "4", "--seed", "1"]
    assert main([*args, *tiny, "--iterations", "2"]) == 0
    first = json.loads((out / "loop.json").read_text())["history"]
    assert [e["real_steps"] for e in first] == [100, 150]  # reacher episodes are 50 steps
    assert main([*args, *tiny, "--iterations", "3"]) == 0
    state = json.loads((out / "loop.json").read_text())
    history = state["history"]
    assert history[:2] == first and state["machine"]["cpu_count"] >= 1
    assert [e["real_steps"] for e in history] == [100, 150, 200]
    assert [e["gymnasium_steps"] for e in history] == [100, 150, 200]  # reacher repeats no action
    assert "| iteration | real steps | Reacher-v5 steps |" in capsys.readouterr().out
    assert [e["model_steps"] for e in history] == [2, 4, 6]
    assert [e["dream_steps"] for e in history] == [64, 128, 192]  # the agent continues, it does not restart
    returns = json.loads((out / "agent" / "returns.json").read_text())
    assert [h["dream_steps"] for h in returns["history"]] == [192]  # one evaluation per iteration
    for e in history:
        assert -60 < e["return_mean"] <= 0 and e["return_ci95"] >= 0
    assert json.loads((out / "model" / "checkpoint" / "config.json").read_text())["training"]["steps"] == 6
    assert (out / "agent" / "policy.zip").is_file() and {"real/return", "real/random_return"} <= tensorboard_tags(out / "tb")
    # Stopped after the agent's run but before loop.json recorded it: the rerun does not train it again.
    (out / "loop.json").write_text(json.dumps({"task": "reacher", "history": history[:2]}))
    assert main([*args, *tiny, "--iterations", "3"]) == 0
    assert json.loads((out / "loop.json").read_text())["history"] == history


def test_a_continued_loop_refuses_other_settings(tmp_path, capsys):
    """Only the length of a loop may change when it goes on: other settings would rewrite its history."""
    out = tmp_path / "loop"
    args = ["loop", "reacher", "--out", str(out), "--initial-steps", "50", "--collect-steps", "50", "--iterations", "1"]
    tiny = ["--model-steps", "2", "--agent-steps", "64", "--num-envs", "4", "--eval-episodes", "2", "--workers", "1"]
    tiny += ["--preset", "tiny", "--batch-size", "2", "--seq-len", "4"]
    assert main([*args, *tiny]) == 0
    saved = (out / "loop.json").read_text()
    assert main([*args, *tiny, "--iterations", "2", "--lr", "0.01", "--collect-steps", "100"]) == 2
    error = capsys.readouterr().err
    assert "other settings (collect_steps: 50 -> 100, train.lr: 0.0006 -> 0.01)" in error
    assert "rerun it with the same ones" in error
    assert (out / "loop.json").read_text() == saved and EpisodeStore(out / "episodes").steps() == 50


def test_dyna_loop_starts_its_model_from_a_checkpoint(tiny_checkpoint, tmp_path):
    """--init: the first iteration fine-tunes the given model; the second resumes the loop's own."""
    from dreamsim.model.checkpoint import load_checkpoint

    out = tmp_path / "loop"
    args = ["loop", "reacher", "--out", str(out), "--initial-steps", "50", "--collect-steps", "50", "--iterations", "2"]
    tiny = ["--model-steps", "2", "--agent-steps", "64", "--num-envs", "4", "--eval-episodes", "2", "--workers", "1"]
    tiny += ["--batch-size", "2", "--seq-len", "4", "--init", str(tiny_checkpoint)]
    assert main([*args, *tiny]) == 0
    assert [e["model_steps"] for e in json.loads((out / "loop.json").read_text())["history"]] == [2, 4]
    saved = load_checkpoint(out / "model" / "checkpoint", "cpu").config
    assert saved["training"]["steps"] == 4 and saved["preset"] == "tiny"  # the start model's sizes
    assert saved["init"]["source"].endswith("checkpoint")


def test_dyna_loop_continues_a_ppo_agent(tmp_path):
    """The second iteration reloads the first one's PPO policy and trains it on."""
    out = tmp_path / "loop"
    args = ["loop", "reacher", "--out", str(out), "--initial-steps", "50", "--collect-steps", "50", "--algo", "ppo"]
    tiny = ["--model-steps", "2", "--agent-steps", "256", "--num-envs", "4", "--eval-episodes", "2", "--workers", "1"]
    tiny += ["--preset", "tiny", "--batch-size", "2", "--seq-len", "4", "--iterations", "2"]
    assert main([*args, *tiny]) == 0
    history = json.loads((out / "loop.json").read_text())["history"]
    assert [e["dream_steps"] for e in history] == [256, 512]
    assert isinstance(load_policy(out / "agent" / "policy.zip"), PPO)


def test_loop_rejects_bad_settings_and_another_tasks_folder(tmp_path):
    from dreamsim.loop import LoopConfig, run_loop
    from dreamsim.resources import assets_dir
    from dreamsim.training import TrainConfig

    with pytest.raises(ValueError, match="unknown algo"):
        LoopConfig(algo="td3")
    with pytest.raises(ValueError, match="cannot be negative"):
        LoopConfig(noise=-0.1)
    with pytest.raises(ValueError, match="at least 1"):
        LoopConfig(iterations=0)
    with pytest.raises(ValueError, match="at least 1"):
        LoopConfig(rollout_length=0)
    with pytest.raises(ValueError, match="at least 1"):  # before any collection or training, not after
        LoopConfig(num_envs=0)
    with pytest.raises(ValueError, match="at least 1"):
        LoopConfig(eval_episodes=0)
    (tmp_path / "loop.json").write_text('{"task": "reacher", "hist')  # cut short
    with pytest.raises(ValueError, match="loop.json is not valid JSON .*restore it, or start over with another --out"):
        run_loop("reacher", tmp_path, LoopConfig())
    (tmp_path / "loop.json").write_text(json.dumps({"task": "hopper", "history": []}))
    with pytest.raises(ValueError, match="holds a loop for 'hopper'"):
        run_loop("reacher", tmp_path, LoopConfig())
    # A bad device or start checkpoint fails before iteration 0 collects anything.
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match="runs on 'cpu' or 'cuda'"):
        run_loop("reacher", fresh, LoopConfig(device="mps"))
    with pytest.raises(FileNotFoundError, match="nope"):
        run_loop("reacher", fresh, LoopConfig(train=TrainConfig(init=str(tmp_path / "nope"))))
    with pytest.raises(ValueError, match="trained for task 'hopper', not 'reacher'"):
        run_loop("reacher", fresh, LoopConfig(train=TrainConfig(init=str(assets_dir() / "hopper"))))
    assert not (fresh / "episodes").exists()


def test_an_interrupted_model_stage_stops_the_loop_unrecorded(tmp_path, monkeypatch):
    import dreamsim.loop as loop

    def interrupted_training(*args, **kwargs):
        raise KeyboardInterrupt  # as train() does once it has saved its checkpoint

    monkeypatch.setattr(loop, "collect", lambda *args, **kwargs: None)
    monkeypatch.setattr(loop, "train", interrupted_training)
    monkeypatch.setattr(loop, "train_in_dream", lambda *args, **kwargs: pytest.fail("the agent stage ran"))
    with pytest.raises(KeyboardInterrupt):
        loop.run_loop("reacher", tmp_path, loop.LoopConfig(iterations=2))
    assert not (tmp_path / "loop.json").exists()
