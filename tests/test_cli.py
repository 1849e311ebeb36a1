import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dreamsim.cli import main
from dreamsim.data import EpisodeStore
from dreamsim.resources import assets_dir
from dreamsim.tasks import load_task
from dreamsim.validation import report as report_module
from dreamsim.validation.demo import run_demo


def test_collect_train_resume_validate_from_the_command_line(tmp_path, capsys, monkeypatch):
    episodes, run = tmp_path / "episodes", tmp_path / "run"
    assert main(["collect", "reacher", "--steps", "100", "--workers", "1", "--seed", "3", "--out", str(episodes)]) == 0
    args = ["train", "reacher", "--episodes", str(episodes), "--out", str(run), "--preset", "tiny"]
    small = ["--batch-size", "2", "--seq-len", "4", "--eval-every", "2", "--eval-episodes", "1"]
    assert main([*args, *small, "--steps", "2"]) == 0
    assert main([*args, *small, "--steps", "3", "--resume"]) == 0
    assert json.loads((run / "checkpoint" / "config.json").read_text())["training"]["steps"] == 3
    assert main([*args, *small, "--steps", "3", "--resume"]) == 2  # the total asked for is already reached
    assert "is at step 3 and --steps is the total to reach: pass more than 3" in capsys.readouterr().err
    report = tmp_path / "report"
    args = ["validate", str(run / "checkpoint"), "--episodes", str(episodes), "--out", str(report)]
    # Thresholds every model meets, then ones none does: --strict exits 1 only on a failed check.
    card = load_task("reacher")
    monkeypatch.setattr(report_module, "load_task", lambda name: replace(card, max_state_error_ratio=1e9, min_psnr_gain=-1e9))
    assert main([*args, "--starts", "2", "--horizon", "5", "--transfer-episodes", "2", "--strict"]) == 0
    checks = json.loads((report / "report.json").read_text())["checks"]
    # Random actions reach the card's horizons 1 and 5, the held-out episodes all four; two checks each.
    assert checks["passed"] and len(checks["items"]) == 2 * (2 + 4)
    assert "12 of 12 passed" in (report / "report.md").read_text()
    assert checks["unchecked_horizons"] == {"matched, random actions": [15, 50]}
    assert "(errors.png, fidelity.json, fidelity.md, report.json, report.md, rollouts.mp4)" in capsys.readouterr().out
    monkeypatch.setattr(report_module, "load_task", lambda name: replace(card, max_state_error_ratio=1e-9, min_psnr_gain=1e9))
    quick = ["--starts", "1", "--horizon", "1", "--transfer-episodes", "2", "--out", str(tmp_path / "strict")]
    assert main(["validate", str(run / "checkpoint"), *quick]) == 0  # the report is the product
    err = capsys.readouterr().err
    assert "2 of 2 checks against the task card failed" in err and "matched, random actions, h=1, PSNR" in err
    assert main(["validate", str(run / "checkpoint"), *quick, "--strict"]) == 1
    monkeypatch.undo()
    metrics = json.loads((report / "fidelity.json").read_text())
    assert metrics["episodes"] == 2 and metrics["real_steps"] == 100
    for h in (1, 5, 15, 50):  # the card's horizons, each with the copy-last baseline beside it
        values = [metrics[f"open_loop/{h}/{key}"] for key in ("psnr", "psnr_copy_last", "state_error", "state_error_copy_last")]
        assert np.isfinite(values).all() and 0 < values[0] <= 60 and values[2] >= 0, (h, values)
    assert "open-loop h=50" in (report / "fidelity.md").read_text()
    assert "## Transfer gap" in (report / "report.md").read_text()
    assert (report / "errors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors_name_the_problem(capsys, tmp_path):
    assert main(["collect", "walker", "--steps", "10"]) == 2
    assert "unknown task 'walker'" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    for command in (["bench", "reacher"], ["collect", "reacher", "--steps", "10"], ["train", "reacher"]):
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--out", str(afile)])
        assert exit_.value.code == 2 and f"--out {afile} is a file: pass a folder" in capsys.readouterr().err
    assert afile.read_text() == "keep me"
    with pytest.raises(SystemExit) as exit_:
        main(["collect", "reacher", "--seed", "-1", "--out", str(tmp_path / "eps")])
    assert exit_.value.code == 2 and "--seed must be 0 or more, got -1" in capsys.readouterr().err


def test_demo_trains_an_agent_and_writes_the_validation_report(tiny_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="agent_steps must be 0 .* got -5"):
        run_demo("reacher", tmp_path / "bad", checkpoint=tiny_checkpoint, agent_steps=-5)
    with pytest.raises(ValueError, match="was trained for 'reacher', not 'hopper': leave the task out or pass reacher"):
        run_demo("hopper", tmp_path / "bad", checkpoint=tiny_checkpoint, agent_steps=64)
    assert not (tmp_path / "bad").exists()
    args = ["--checkpoint", str(tiny_checkpoint), "--agent-steps", "64", "--episodes", "2", "--starts", "2"]
    assert main(["demo", "--out", str(tmp_path), *args]) == 0  # the task is the checkpoint's
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["machine"]["cpu_count"] >= 1  # what the numbers were measured on
    agent = data["agent"]
    assert agent["dream_steps"] == 64 and agent["real_env_steps_for_training"] == 0
    for policy in ("trained", "random", "constant"):
        assert agent[policy]["lengths"] == [50, 50] and agent[policy]["return_mean"] <= 0
    assert (tmp_path / "agent" / "policy.zip").is_file()
    # The trained policy is validated beside random actions, in the matched rollouts and the transfer gap.
    assert set(data["matched"]["curves"]) == set(data["transfer"]) == {"random", "policy"}
    assert data["matched"]["behaviour"] == "policy"
    assert (tmp_path / "rollouts.mp4").stat().st_size > 1000
    text = (tmp_path / "report.md").read_text()
    assert data["checkpoint"] == str(tiny_checkpoint)
    assert "SAC trained in DreamSim only" in text and "| policy |" in text


@pytest.mark.skipif(not (assets_dir() / "reacher" / "config.json").is_file(), reason="no shipped reacher checkpoint")
def test_demo_on_the_shipped_default(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--agent-steps", "0", "--starts", "2", "--episodes", "2"]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["checkpoint"].endswith("reacher") and set(data["transfer"]) == {"random"}


def test_collect_with_the_mpc_policy(tiny_checkpoint, tmp_path, monkeypatch):
    from dreamsim.planning import MPCAgent

    planned = []
    act = MPCAgent.act
    monkeypatch.setattr(MPCAgent, "act", lambda self, obs, frame: planned.append(1) or act(self, obs, frame))
    args = ["collect", "reacher", "--policy", "mpc", "--steps", "10", "--checkpoint", str(tiny_checkpoint)]
    assert main([*args, "--seed", "0", "--out", str(tmp_path)]) == 0
    (episode,) = EpisodeStore(tmp_path).episodes()
    assert len(episode) == 50 and (np.abs(episode.actions) <= 1.0).all()
    assert len(planned) == 50  # every action came from the planner


def test_collect_with_a_saved_agent(tmp_path, capsys):
    import gymnasium as gym
    from stable_baselines3 import SAC

    SAC("MlpPolicy", gym.make("Reacher-v5"), seed=0).save(tmp_path / "policy.zip")  # Reacher's spaces, untrained
    args = ["collect", "reacher", "--policy", str(tmp_path / "policy.zip"), "--noise", "0", "--steps", "10", "--seed", "0"]
    assert main([*args, "--out", str(tmp_path / "episodes")]) == 0
    (episode,) = EpisodeStore(tmp_path / "episodes").episodes()
    agent = SAC.load(tmp_path / "policy.zip", device="cpu")
    expected, _ = agent.predict(episode.obs[: len(episode)], deterministic=True)
    np.testing.assert_allclose(episode.actions, expected, atol=1e-4)  # every action is the agent's, noise 0

    assert main(["collect", "reacher", "--policy", "randm", "--out", str(tmp_path / "typo")]) == 2
    assert "--policy takes random, mpc or a saved agent's policy.zip; there is no file at randm" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    assert main([*args, "--planner", "tdmpc2-cem", "--out", str(tmp_path / "mixed")]) == 2
    assert "--checkpoint and --planner set the MPC agent" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli_with_spawned_workers(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "episodes"
    args = [sys.executable, "-m", "dreamsim", "collect", "reacher", "--steps", "60", "--workers", "2", "--seed", "4"]
    done = subprocess.run([*args, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert EpisodeStore(out).steps() >= 60


def test_sigterm_stops_collection_with_its_workers(tmp_path):
    """A terminated `dreamsim collect` takes its spawned workers with it: none lives on to write
    episodes after the command has ended."""
    import signal
    import subprocess
    import sys
    import time

    def workers_of(pid: int) -> set[int]:
        """Collection workers among the children of ``pid`` (not multiprocessing's resource tracker)."""
        found = set()
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                ppid = int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
                spawned = b"spawn_main" in (proc_dir / "cmdline").read_bytes()
            except OSError:
                continue  # the process ended while we looked
            if ppid == pid and spawned:
                found.add(int(proc_dir.name))
        return found

    out = tmp_path / "episodes"
    args = [sys.executable, "-m", "dreamsim", "collect", "reacher", "--steps", "1000000", "--workers", "2"]
    proc = subprocess.Popen([*args, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*.npz")) and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = workers_of(proc.pid)
        assert list(out.glob("*.npz")) and workers, "collection never got going"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    written = len(list(out.glob("*.npz")))
    time.sleep(1.0)
    assert not alive and len(list(out.glob("*.npz"))) == written


def test_a_yes_no_setting_reads_as_a_flag():
    """`--reference` / `--no-reference` set the bool; left out, the config keeps its default."""
    from dreamsim.cli import build_parser

    def parse(*flags):
        return build_parser().parse_args(["tune-decoder", "reacher", *flags]).reference

    assert (parse("--reference"), parse("--no-reference"), parse()) == (True, False, None)
    with pytest.raises(SystemExit):
        parse("--reference", "false")


def test_bench_writes_its_rows_and_table(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    def measured(*args):
        raise AssertionError("measured MuJoCo before checking the input")

    with monkeypatch.context() as patch:  # bad input fails before the MuJoCo rows, which take seconds each
        patch.setattr("dreamsim.throughput.mujoco_rate", measured)
        assert main(["bench", "reacher", "--batches", "0", "--out", str(tmp_path)]) == 2
        assert "batches must each be 1 env or more, got [0]" in capsys.readouterr().err
        assert main(["bench", "reacher", "--checkpoint", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
        assert "no checkpoint at" in capsys.readouterr().err
    monkeypatch.setattr("os.cpu_count", lambda: 2)  # its AsyncVectorEnv row runs one MuJoCo worker per core
    args = ["bench", "reacher", "--batches", "2", "--seconds", "0.01", "--checkpoint", str(tiny_checkpoint)]
    assert main([*args, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "throughput-cpu.json").read_text())
    rows = {(r["sim"], r["obs_mode"], r["batch"]): r for r in result["rows"]}
    dreamsim_rows = [(sim, mode, 2) for sim in ("dreamsim", "dreamsim (bf16)") for mode in ("state", "pixels")]
    assert set(dreamsim_rows) <= set(rows) and len(rows) == 7  # and three MuJoCo rows
    for r in rows.values():
        assert r["steps_per_s"] > 0 and r["frames_per_s"] == (r["steps_per_s"] if r["obs_mode"] == "pixels" else 0.0)
    assert max(r["x_mujoco_steps"] for r in rows.values() if r["sim"].startswith("mujoco")) == 1.0
    if sys.platform == "linux":  # the CPU's name and bf16 units, read from /proc/cpuinfo
        assert result["machine"]["cpu_model"] and isinstance(result["machine"]["cpu_bf16"], bool)
    table = (tmp_path / "throughput-cpu.md").read_text()
    assert table in capsys.readouterr().out and table.count("\n| ") == 1 + len(rows)  # the header, then one per row
