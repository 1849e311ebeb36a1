"""Collect real MuJoCo episodes and write them to an episode store: random ones in parallel worker
processes, an agent's (latent MPC, or a saved SB3 policy; ``collection_agent``) in this process.

Workers are started with the ``spawn`` context and each opens its own renderer: a process that
holds an EGL context must not be forked.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dreamsim.control import Agent, PolicyAgent, frame_for
from dreamsim.data.store import Episode, EpisodeStore
from dreamsim.tasks import COLLECT_POLICIES, Task, load_task, make_real, real_spaces

_worker_envs: dict[str, gym.Env] = {}  # one real env per task in each worker process


def run_episode(env: gym.Env, seed: int, policy: Callable[[np.ndarray], np.ndarray] | None = None) -> Episode:
    """Roll one episode in ``env`` (a ``make_real`` env), uniform random actions unless ``policy``."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    data = env.unwrapped.data  # type: ignore[attr-defined]
    frames: list[np.ndarray] = [np.asarray(env.render())]
    observations = [obs]
    qpos, qvel = [data.qpos.copy()], [data.qvel.copy()]
    actions, rewards, terminated, truncated = [], [], [], []
    done = False
    while not done:
        action = env.action_space.sample() if policy is None else np.asarray(policy(obs), np.float32)
        obs, reward, term, trunc, _ = env.step(action)
        frames.append(np.asarray(env.render()))
        observations.append(obs)
        qpos.append(data.qpos.copy())
        qvel.append(data.qvel.copy())
        actions.append(action)
        rewards.append(reward)
        terminated.append(term)
        truncated.append(trunc)
        done = term or trunc
    return Episode(
        frames=np.stack(frames).astype(np.uint8),
        obs=np.stack(observations).astype(np.float32),
        actions=np.stack(actions).astype(np.float32),
        rewards=np.asarray(rewards, np.float32),
        terminated=np.asarray(terminated, bool),
        truncated=np.asarray(truncated, bool),
        qpos=np.stack(qpos),
        qvel=np.stack(qvel),
    )


def _check_fits(card: Task, out: str | Path) -> None:
    """Refuse to add ``card``'s episodes to a folder that holds another task's."""
    store = EpisodeStore(out)
    paths = store.paths()
    if not paths:
        return
    obs_space, action_space = real_spaces(card)
    sizes = (obs_space.shape[0], action_space.shape[0], card.frame_size)
    held = store.read(paths[0]).sizes
    if held != sizes:
        raise ValueError(
            f"{out} holds episodes of another task ({paths[0].name}: state, action and frame sizes {held}; "
            f"{card.name}'s are {sizes}): collect into another --out"
        )


def _episode_seeds(seed: int | None, out: str | Path) -> list[int]:
    """Episode seeds drawn from ``seed`` (fresh entropy when ``None``), used from the end.

    A store that already holds episodes mixes their count into the seed: collecting again with the
    same seed (a rerun, a resumed loop) adds new episodes rather than copies of the ones it has."""
    stored = len(EpisodeStore(out))
    entropy = seed if seed is None or stored == 0 else (seed, stored)
    return np.random.SeedSequence(entropy).generate_state(1 << 20).tolist()


def _collect_here(
    env: gym.Env,
    out: str | Path,
    steps: int,
    seeds: list[int],
    bar: Any,
    policy: Callable[[np.ndarray], np.ndarray] | None = None,
    on_episode: Callable[[], None] | None = None,
) -> int:
    """Collect whole episodes in this process until ``steps`` new steps are written; closes ``env``."""
    store, done = EpisodeStore(out), 0
    try:
        while done < steps:
            if on_episode is not None:
                on_episode()
            episode = run_episode(env, seeds.pop(), policy)
            store.write(episode)
            done += len(episode)
            bar.update(len(episode))
    finally:
        env.close()
    return done


def collect_with_agent(
    task: str | Task,
    out: str | Path,
    steps: int,
    agent: Agent,
    noise: float = 0.3,
    seed: int | None = None,
    progress: bool = False,
) -> int:
    """Collect whole episodes with ``agent`` (a ``dreamsim.control`` agent) plus Gaussian exploration
    noise of ``noise`` times the half-width of the action box, in this process; returns the steps written."""
    card = load_task(task)
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    if noise < 0:
        raise ValueError(f"noise is a standard deviation and cannot be negative, got {noise}")
    _check_fits(card, out)
    seeds = _episode_seeds(seed, out)
    rng = np.random.default_rng(seeds.pop())
    env = make_real(card)
    low, high = env.action_space.low, env.action_space.high  # type: ignore[attr-defined]
    half = (high - low) / 2

    def policy(obs: np.ndarray) -> np.ndarray:
        frame = frame_for(agent, env)
        action = agent.act(obs, frame) + noise * half * rng.standard_normal(low.shape)
        action = np.clip(action, low, high).astype(np.float32)
        if hasattr(agent, "executed"):  # an agent that tracks its actions (MPC's latent) hears what ran
            agent.executed(action)
        return action

    from tqdm.auto import tqdm

    desc = f"collect {card.name} with {type(agent).__name__}"
    with tqdm(total=steps, unit="step", desc=desc, disable=not progress) as bar:
        return _collect_here(env, out, steps, seeds, bar, policy, on_episode=lambda: agent.reset(env))


def collection_agent(
    task: str | Task,
    policy: str,
    checkpoint: str | Path | None = None,
    planner: str | None = None,
    device: str = "auto",
    seed: int = 0,
) -> Agent:
    """The agent ``dreamsim collect --policy`` names: ``mpc`` (latent MPC on ``checkpoint``, the task's
    shipped model by default, with the ``planner`` preset) or the path of a saved agent's ``policy.zip``."""
    card = load_task(task)
    if policy != "mpc":
        if not Path(policy).exists():
            choices = ", ".join(COLLECT_POLICIES)
            raise FileNotFoundError(f"--policy takes {choices} or a saved agent's policy.zip; there is no file at {policy}")
        if checkpoint is not None or planner is not None:
            raise ValueError("--checkpoint and --planner set the MPC agent: a saved agent brings its own policy, so drop them")
        from dreamsim.imagination import load_policy

        return PolicyAgent(load_policy(policy, card))
    from dreamsim.device import resolve_device
    from dreamsim.model.checkpoint import load_for_task
    from dreamsim.planning import MPCAgent, planner_config

    model = load_for_task(card, checkpoint, resolve_device(device)).model
    return MPCAgent(model, real_spaces(card)[1], planner_config(planner or "tdmpc2-mppi"), seed=seed)


def _unwind(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _collect_in_worker(task: Task, root: str, seed: int) -> int:
    # On an error or interruption ``collect`` stops its workers with SIGTERM. During an episode the
    # worker unwinds, so that a file being written is removed (``write_atomic``). Idle, it keeps the
    # default action and dies at once: a Python handler runs in the main thread only, and one blocked
    # on the task queue would never run it if a renderer's or BLAS's thread took the signal.
    previous = signal.signal(signal.SIGTERM, _unwind)
    try:
        if task.name not in _worker_envs:
            _worker_envs[task.name] = make_real(task)
        episode = run_episode(_worker_envs[task.name], seed)
        EpisodeStore(root).write(episode)
        return len(episode)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _worker(task: Task, root: str, seeds: Any, results: Any) -> None:
    """A collection worker: one episode per seed from ``seeds`` until a ``None``; each episode's
    length, or the traceback of what failed, goes to ``results``."""
    import traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: `collect` stops its workers
    while (seed := seeds.get()) is not None:
        try:
            results.put(_collect_in_worker(task, root, seed))
        except Exception:
            results.put(traceback.format_exc())
            return


def _next_result(results: Any, workers: list[Any]) -> int:
    """The next episode's length from ``results``. A worker that failed sends its traceback and ends;
    one that died without a word (a crash in native code, the OOM killer) is found by its exit code,
    rather than waited on for the episode it lost."""
    import queue

    while True:
        crashed = [w for w in workers if w.exitcode not in (None, 0)]
        if crashed:
            raise RuntimeError(
                f"a collection worker died mid-episode (exit code {crashed[0].exitcode}); the episodes written "
                "so far are kept: run the command again to add the rest"
            )
        try:
            result = results.get(timeout=1.0)
        except queue.Empty:
            continue
        if isinstance(result, str):
            raise RuntimeError(f"a collection worker failed:\n{result}")
        return result


def collect(
    task: str | Task,
    out: str | Path,
    steps: int,
    workers: int = 1,
    seed: int | None = None,
    progress: bool = False,
) -> int:
    """Collect whole random-policy episodes until at least ``steps`` new agent steps are written.

    Returns the number of steps written. Episodes already in ``out`` are kept and not counted.
    """
    card = load_task(task)
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    _check_fits(card, out)
    seeds = _episode_seeds(seed, out)
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, unit="step", desc=f"collect {card.name}", disable=not progress)
    try:
        if workers == 1:
            return _collect_here(make_real(card), out, steps, seeds, bar)
        return _collect_in_workers(card, out, steps, seeds, bar, workers)
    finally:
        bar.close()


def _collect_in_workers(card: Task, out: str | Path, steps: int, seeds: list[int], bar: Any, workers: int) -> int:
    """``collect`` with ``workers`` spawned processes, each running whole episodes from ``seeds``."""
    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(card, str(out), tasks, results), daemon=True) for _ in range(workers)]
    done = in_flight = 0
    try:
        for proc in procs:
            proc.start()
        while done < steps or in_flight:
            # Keep every worker busy, but stop asking once the in-flight episodes may cover `steps`, each
            # counted at the card's full length: then whatever the timing a seed collects the same episodes,
            # the shortest run of its seeds that reaches `steps`.
            while in_flight < 2 * workers and done + in_flight * card.episode_length < steps:
                tasks.put(seeds.pop())
                in_flight += 1
            n = _next_result(results, procs)
            in_flight -= 1
            done += n
            bar.update(n)
        for _ in procs:
            tasks.put(None)  # done: idle workers exit on their own
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:  # left running only on an error or interruption
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            if proc.pid is not None:
                # A worker stopped while it sent a result leaves the result queue's lock held, and another
                # worker's exit then waits on that lock for ever. Such a worker has nothing left to save.
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        tasks.cancel_join_thread()  # seeds nobody will read must not hold this process at exit
    return done
