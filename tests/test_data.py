import re

import numpy as np
import pytest

from dreamsim.data import EpisodeStore, SequenceSampler, collect
from dreamsim.tasks import load_task


def test_collected_episodes_hold_every_field(reacher_episodes):
    store = EpisodeStore(reacher_episodes)
    assert len(store) == 4
    ep = store.read(store.paths()[0])
    assert len(ep) == 50
    assert ep.frames.shape == (51, 64, 64, 3) and ep.frames.dtype == np.uint8
    assert ep.obs.shape == (51, 10) and ep.actions.shape == (50, 2)
    assert ep.qpos.shape == (51, 4) and ep.qvel.shape == (51, 4)
    assert ep.truncated[-1] and not ep.terminated.any()
    assert sorted(reacher_episodes.iterdir()) == store.paths()  # episodes only, no temporary files left


def test_rerun_adds_and_keeps_existing(tmp_path):
    collect("reacher", tmp_path, steps=50, workers=1, seed=1)
    first = EpisodeStore(tmp_path).paths()
    collect("reacher", tmp_path, steps=50, workers=1, seed=1)  # the same seed again, as a resumed loop does
    paths = EpisodeStore(tmp_path).paths()
    assert len(paths) == 2 and set(first) <= set(paths)
    a, b = (EpisodeStore.read(p) for p in paths)
    assert not np.array_equal(a.actions, b.actions)  # a new episode, not a copy of the first
    fresh = tmp_path / "fresh"
    collect("reacher", fresh, steps=50, workers=1, seed=1)
    assert np.array_equal(EpisodeStore.read(EpisodeStore(fresh).paths()[0]).actions, EpisodeStore.read(first[0]).actions)


def test_split_keeps_its_validation_episodes_as_the_store_grows(tmp_path):
    store = EpisodeStore(tmp_path)
    for i in range(40):
        (tmp_path / f"{i:032x}-50.npz").touch()
    train, val = store.split()
    assert 1 <= len(val) <= 8 and set(train) | set(val) == set(store.paths())  # about one in ten
    assert not set(train) & set(val)
    for i in range(40, 80):
        (tmp_path / f"{i:032x}-50.npz").touch()
    train2, val2 = store.split()
    assert set(val) <= set(val2) and set(train) <= set(train2)


def test_a_stray_file_in_an_episode_folder_is_named(tmp_path):
    (tmp_path / "notes.npz").touch()
    with pytest.raises(ValueError, match="notes.npz is not named like an episode file"):
        EpisodeStore(tmp_path).steps()


def test_real_state_restores_exactly(reacher_episodes):
    """qpos/qvel in an episode restore MuJoCo to the recorded observation."""
    from dreamsim import make_real

    ep = EpisodeStore.read(EpisodeStore(reacher_episodes).paths()[1])
    env = make_real("reacher")
    env.reset(seed=0)
    for t in (10, 30):
        env.unwrapped.set_state(ep.qpos[t], ep.qvel[t])
        np.testing.assert_allclose(env.unwrapped._get_obs(), ep.obs[t], rtol=1e-5, atol=1e-5)
        # ... and its frame is the one recorded at that step, not the step before (off by at most a
        # grey level from rendering noise, against several on average for a step's motion).
        frame = np.asarray(env.render()).astype(int)
        assert np.abs(frame - ep.frames[t]).mean() < 0.1 < np.abs(frame - ep.frames[t - 1]).mean()
    env.close()


def test_sampler_aligns_actions_with_the_step_they_lead_to(reacher_episodes):
    ep = EpisodeStore.read(EpisodeStore(reacher_episodes).paths()[0])
    batch = SequenceSampler([ep], seed=0).sample(64, 8)
    assert batch["frames"].shape == (64, 8, 64, 64, 3)
    starts = []
    for b in range(64):
        s = int(np.where((ep.obs == batch["obs"][b, 0]).all(1))[0][0])
        m = min(8, len(ep) + 1 - s)  # a window near the episode's end is padded
        starts.append(s)
        np.testing.assert_array_equal(batch["mask"][b], np.arange(8) < m)
        np.testing.assert_array_equal(batch["obs"][b, :m], ep.obs[s : s + m])
        np.testing.assert_array_equal(batch["frames"][b, :m], ep.frames[s : s + m])
        assert (batch["actions"][b, 0] == 0).all() and (batch["obs"][b, m:] == 0).all()
        np.testing.assert_array_equal(batch["actions"][b, 1:m], ep.actions[s : s + m - 1])
        np.testing.assert_array_equal(batch["rewards"][b, 1:m], ep.rewards[s : s + m - 1])
    assert max(starts) > len(ep) - 8  # windows start late in the episode too, not only where 8 steps fit


def test_sampler_marks_the_step_that_ends_by_termination():
    """``cont`` is 0 at the observation a terminating step leads to, and 1 at every other one."""
    from synthetic import dot_episode

    ep = dot_episode(np.random.default_rng(0), steps=6)
    ep.terminated[-1], ep.truncated[-1] = True, False
    batch = SequenceSampler([ep], seed=0).sample(64, 8)
    for b in range(64):
        s = int(np.where((ep.obs == batch["obs"][b, 0]).all(1))[0][0])
        expected = np.ones(8, np.float32)
        expected[6 - s] = 0.0  # the terminal observation, index 6, always lies within the window
        expected[7 - s :] = 0.0  # padding past the episode's end
        np.testing.assert_array_equal(batch["cont"][b], expected)


def test_bad_requests_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="no episodes"):
        SequenceSampler([])
    with pytest.raises(ValueError, match="steps must be positive"):
        collect("reacher", tmp_path, steps=0)
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="unreadable"):
        EpisodeStore.read(bad)
    # A real episode file cut short or with one byte flipped: zipfile and zlib raise their own errors.
    from synthetic import dot_episode

    good = EpisodeStore(tmp_path / "store").write(dot_episode(np.random.default_rng(0)))
    data = good.read_bytes()
    for broken in (data[: len(data) // 2], data[:200] + bytes([data[200] ^ 0xFF]) + data[201:]):
        bad.write_bytes(broken)
        with pytest.raises(ValueError, match="delete it and collect again"):
            EpisodeStore.read(bad)


def test_wrong_folders_are_named_for_what_they_are(reacher_episodes, tmp_path):
    """A checkpoint, a file, a parent folder or a mix of tasks: each error says which, and collect
    adds nothing to another task's folder."""
    import shutil

    from synthetic import dot_episode

    from dreamsim.resources import assets_dir
    from dreamsim.training.trainer import read_split

    with pytest.raises(ValueError, match="is a model checkpoint, not a folder of episodes"):
        EpisodeStore(assets_dir() / "reacher").paths()  # its start_states.npz must not be taken for an episode
    one = EpisodeStore(reacher_episodes).paths()[0]
    with pytest.raises(ValueError, match="is a file: pass the folder"):
        read_split(load_task("reacher"), one, 1)
    with pytest.raises(ValueError, match=re.escape(f"holds no episodes itself, but its subfolders do ({reacher_episodes})")):
        read_split(load_task("reacher"), reacher_episodes.parent, 1)
    run = tmp_path / "run"  # a training run: its checkpoint's start_states.npz is no episode to point to
    shutil.copytree(assets_dir() / "reacher", run / "checkpoint")
    with pytest.raises(ValueError, match=f"no episodes in {run}: run `dreamsim collect reacher"):
        read_split(load_task("reacher"), run, 1)
    with pytest.raises(ValueError, match="nope does not exist: run `dreamsim collect reacher"):
        read_split(load_task("reacher"), tmp_path / "nope", 1)

    mixed = tmp_path / "mixed"
    shutil.copytree(reacher_episodes, mixed)
    before = sorted(mixed.iterdir())
    with pytest.raises(ValueError, match="holds episodes of another task .*collect into another --out"):
        collect("hopper", mixed, steps=10, workers=1, seed=0)
    assert sorted(mixed.iterdir()) == before
    EpisodeStore(mixed).write(dot_episode(np.random.default_rng(0)))  # as an older collect would have let through
    with pytest.raises(ValueError, match="mixed mixes tasks: .*keep one task's episodes per folder"):
        read_split(load_task("reacher"), mixed, 16)
    with pytest.raises(ValueError, match="mixes tasks"):
        EpisodeStore(mixed).observations(limit=1000)


def test_collect_with_an_agent_adds_bounded_exploration_noise(tmp_path):
    import gymnasium as gym

    from dreamsim.control import ConstantAgent
    from dreamsim.data import collect_with_agent

    space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    steps = collect_with_agent("inverted_pendulum", tmp_path, 30, ConstantAgent(space, np.array([0.5])), noise=0.1, seed=0)
    episodes = list(EpisodeStore(tmp_path).episodes())
    actions = np.concatenate([e.actions for e in episodes])
    assert steps == len(actions) >= 30 and len(episodes) >= 1
    assert 0.3 < actions.mean() < 0.7 and actions.std() > 0.1  # around the agent's action, with noise
    # Near the edge of InvertedPendulum's box [-3, 3] the noise would cross it: it is clipped there.
    collect_with_agent("inverted_pendulum", tmp_path / "edge", 30, ConstantAgent(space, np.array([2.5])), noise=0.5, seed=0)
    edge = np.concatenate([e.actions for e in EpisodeStore(tmp_path / "edge").episodes()])
    assert edge.max() == 3.0 and edge.min() >= -3.0 and (edge < 3.0).any()


def test_sampler_draws_episodes_in_proportion_to_their_length():
    """One 2-step and one 98-step episode: about 98% of windows must come from the long one."""
    from synthetic import dot_episode

    rng = np.random.default_rng(0)
    short, long = dot_episode(rng, steps=2), dot_episode(rng, steps=98)
    batch = SequenceSampler([short, long], seed=0).sample(1000, 4)
    from_short = (batch["obs"][:, :1] == short.obs[None, :2]).all(-1).any(-1)  # its first two observations
    assert 0.005 < from_short.mean() < 0.05


def test_a_collection_worker_unwinds_on_sigterm_only_during_an_episode(monkeypatch, tmp_path):
    """During an episode SIGTERM unwinds (an interrupted write is removed); idle, the worker keeps the
    default action (see the test below)."""
    import importlib
    import signal

    collect_module = importlib.import_module("dreamsim.data.collect")  # the module, not the function
    handlers = []

    def episode(env, seed, policy=None):  # type: ignore[no-untyped-def]
        handlers.append(signal.getsignal(signal.SIGTERM))
        raise KeyboardInterrupt  # enough: the episode itself is not under test

    monkeypatch.setattr(collect_module, "run_episode", episode)
    monkeypatch.setattr(collect_module, "make_real", lambda task: object())  # no renderer in this process
    monkeypatch.setattr(collect_module, "_worker_envs", {})
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        collect_module._collect_in_worker(load_task("reacher"), str(tmp_path), 0)
    assert handlers == [collect_module._unwind] and signal.getsignal(signal.SIGTERM) is before


def _idle_worker_after_an_episode(root: str, ready) -> None:  # type: ignore[no-untyped-def]
    """A collection worker's life: one episode, then blocked waiting for its next task. Its main thread
    blocks SIGTERM, so the signal lands on another thread, as it may on a renderer's or BLAS's."""
    import multiprocessing as mp
    import signal
    import threading
    import time

    from dreamsim.data.collect import _collect_in_worker

    _collect_in_worker(load_task("reacher"), root, 0)
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    ready.set()
    task_queue = mp.Lock()  # an idle worker waits on its task queue (its lock, or the pipe: a blocking call)
    task_queue.acquire()
    task_queue.acquire()


def test_an_idle_collection_worker_dies_by_sigterm_whichever_thread_takes_it(tmp_path):
    """`collect` stops its workers by SIGTERM on an error or interruption. A Python handler runs in the
    main thread only, and an idle worker's main thread, blocked on the task queue, would never run it."""
    import multiprocessing as mp
    import signal
    import time

    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    worker = ctx.Process(target=_idle_worker_after_an_episode, args=(str(tmp_path), ready))
    worker.start()
    try:
        assert ready.wait(120), "the worker never finished its episode"
        assert EpisodeStore(tmp_path).steps() == 50
        time.sleep(0.5)  # let its main thread reach the lock: still running Python, it would run a handler
        worker.terminate()
        worker.join(30)
        assert worker.exitcode == -signal.SIGTERM, "the idle worker ignored SIGTERM taken by another of its threads"
    finally:
        worker.kill()
        worker.join()


def test_a_collection_worker_that_fails_sends_its_error(tmp_path):
    """The worker's own traceback reaches the caller, and the other workers are stopped."""
    import dataclasses
    import multiprocessing as mp

    broken = dataclasses.replace(load_task("reacher"), gym_id="NoSuchEnv-v0")
    with pytest.raises(RuntimeError, match="a collection worker failed:(.|\n)*NoSuchEnv"):
        collect(broken, tmp_path / "episodes", steps=100, workers=2, seed=0)
    assert not mp.active_children() and not list((tmp_path / "episodes").glob("*"))


def test_a_collection_worker_that_dies_is_reported_not_waited_on():
    """A worker killed mid-episode (a crash in native code, the OOM killer) sends nothing: its exit
    code tells, where waiting on its result would never end."""
    import multiprocessing as mp
    import os

    from dreamsim.data.collect import _next_result

    ctx = mp.get_context("spawn")
    worker = ctx.Process(target=os._exit, args=(3,))
    worker.start()
    worker.join(60)
    with pytest.raises(RuntimeError, match=r"died mid-episode \(exit code 3\)"):
        _next_result(ctx.Queue(), [worker])
