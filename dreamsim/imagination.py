"""Train a Stable-Baselines3 agent in DreamSim only, scoring it on the real MuJoCo twin as it learns.

``train_in_dream`` is what the ``agents/`` recipes and ``dreamsim demo`` share: the batched SB3
``VecEnv`` over the learned simulator, TensorBoard logging, a progress bar, an evaluation in real
MuJoCo every ``eval_every`` steps (logged as ``real/return``), and the saved policy. Real episodes
serve for evaluation and, with ``start_episodes``, as start states; the agent trains on imagined
transitions only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor
from tqdm import tqdm

from dreamsim.control import PolicyAgent, RandomAgent, evaluate, policy_obs_mode
from dreamsim.device import describe_machine
from dreamsim.files import read_json, write_atomic, write_json
from dreamsim.tasks import REAL_OBS_MODES, Task, load_task, real_spaces

ALGOS: dict[str, type[BaseAlgorithm]] = {"sac": SAC, "ppo": PPO}
# SB3 settings for imagination, under any given in ``algo_kwargs``. Imagined transitions are cheap:
# SAC takes a larger batch and two updates per batched step; PPO rolls 64 steps per env per update.
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "sac": {"learning_starts": 1_000, "batch_size": 512, "train_freq": 1, "gradient_steps": 2},
    "ppo": {"n_steps": 64, "batch_size": 512},
}
# SAC's replay buffer on frames: 100k transitions hold 2.5 GB of 64x64 frames (SB3's 1M would hold 25).
FRAME_BUFFER = 100_000
# SB3's policy for each observation mode a policy can be run on in MuJoCo too (see make_real).
POLICIES = {"state": "MlpPolicy", "pixels": "CnnPolicy", "dict": "MultiInputPolicy"}
# A setting that only this algorithm saves tells which one wrote a zip: the policy class does not,
# as PPO's ``MlpPolicy`` lives in SB3's common module.
_SAVED_ONLY_BY = {"sac": "target_entropy", "ppo": "clip_range"}  # DQN saves target_update_interval too


@dataclass(frozen=True)
class DreamTrainConfig:
    """One run of an SB3 agent in imagination. ``algo_kwargs`` go to the SB3 constructor, over
    ``ALGO_DEFAULTS[algo]``."""

    algo: str = "sac"
    obs_mode: str = "state"  # what the policy observes: "state", "pixels" or "dict" (both)
    steps: int = 20_000  # environment steps in DreamSim (all envs together)
    num_envs: int = 16
    eval_every: int = 5_000
    eval_episodes: int = 5
    seed: int = 0
    checkpoint: str | None = None  # world model (default: the task's shipped one)
    device: str = "auto"  # where DreamSim runs
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    init_policy: str | None = None  # a saved policy to continue (its weights and step count)
    uncertainty_penalty: float = 0.0  # reward minus this times the ensemble's disagreement
    max_episode_steps: int | None = None  # imagined episode length (default: the card's)
    start_episodes: str | None = None  # real episodes to start from anywhere (default: shipped start states)

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algo {self.algo!r}: choose one of {sorted(ALGOS)}")
        if self.obs_mode not in REAL_OBS_MODES:
            raise ValueError(f"obs_mode {self.obs_mode!r}: a policy to run in MuJoCo observes one of {REAL_OBS_MODES}")
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        counts = [self.steps, self.num_envs, self.eval_every, self.eval_episodes]
        if self.max_episode_steps is not None:
            counts.append(self.max_episode_steps)
        if min(counts) < 1:
            raise ValueError("steps, num_envs, eval_every, eval_episodes and max_episode_steps must all be at least 1")


def load_policy(path: str | Path, task: str | Task | None = None) -> Any:
    """Load an SB3 model saved by ``train_in_dream`` (or any SB3 SAC/PPO ``.zip``) on the CPU; with
    ``task``, refuse one whose observation or action shape is not that task's."""
    import zipfile

    path = Path(path)
    if (path / "policy.zip").is_file():  # a recipe's run folder
        raise FileNotFoundError(f"{path} is a run folder, not a policy: did you mean {path / 'policy.zip'}?")
    if not path.is_file():
        raise FileNotFoundError(f"no policy at {path}: train one with `python agents/sac_in_dream.py` (it writes policy.zip)")
    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data"))
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise ValueError(f"{path} is not a Stable-Baselines3 model zip ({err})") from err
    if not isinstance(data, dict) or "policy_class" not in data:
        raise ValueError(f"{path} is not a Stable-Baselines3 model zip (its data names no policy class)")
    algo = next((ALGOS[name] for name, mark in _SAVED_ONLY_BY.items() if mark in data), None)
    if algo is None:
        raise ValueError(f"{path} holds a policy of another algorithm; DreamSim loads {sorted(ALGOS)}")
    policy = algo.load(path, device="cpu")
    if task is not None:
        check_policy_fits(policy, task, path)
    return policy


def check_policy_fits(policy: BaseAlgorithm, task: str | Task, path: str | Path) -> None:
    """Refuse a policy (loaded from ``path``) whose observation or action shape is not ``task``'s."""
    card = load_task(task)
    state, action = (space.shape for space in real_spaces(card))
    frame = (card.frame_size, card.frame_size, 3)
    space = policy.observation_space
    mode = policy_obs_mode(space)
    seen: Any
    expected: Any
    if isinstance(space, gym.spaces.Dict):
        if set(space.spaces) != {"state", "pixels"}:
            raise ValueError(
                f"{path} holds a policy for observations {sorted(space.spaces)}; DreamSim's dict mode has 'pixels' "
                f"and 'state': pass a policy trained on {card.name}"
            )
        seen, expected = (space["state"].shape, _channels_last(space["pixels"].shape)), (state, frame)
    else:
        seen, expected = (_channels_last(space.shape), frame) if mode == "pixels" else (space.shape, state)
    if (seen, policy.action_space.shape) != (expected, action):
        raise ValueError(
            f"{path} holds a policy for {mode} observations and actions of shapes {seen}, "
            f"{policy.action_space.shape}; {card.name}'s are {expected}, {action}: pass a policy trained on {card.name}"
        )


def _channels_last(shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """A frame's shape as DreamSim gives it, (H, W, 3), also where SB3 moved the channels first."""
    if shape is not None and len(shape) == 3 and shape[0] == 3 and shape[-1] != 3:
        return (*shape[1:], 3)
    return shape


class RealEvalCallback(BaseCallback):
    """Every ``every`` env steps, and at the end, run the policy for ``episodes`` real episodes; log
    and keep the results, each under ``steps_key`` with the env steps the agent has trained on."""

    def __init__(
        self, task: str | Task, every: int, episodes: int, seed: int, bar: tqdm | None = None, steps_key: str = "dream_steps"
    ):
        super().__init__()
        self.task, self.every, self.episodes, self.seed, self.bar = task, every, episodes, seed, bar
        self.steps_key = steps_key
        self.history: list[dict[str, Any]] = []
        self._next = every

    def _on_training_start(self) -> None:
        self._next = self.model.num_timesteps + self.every  # a continued policy starts past zero

    def evaluate_now(self) -> dict[str, Any]:
        result = evaluate(self.task, PolicyAgent(self.model), self.episodes, self.seed)
        entry = {self.steps_key: self.num_timesteps, **result}
        self.history.append(entry)
        self.logger.record("real/return", result["return_mean"])
        self.logger.record("real/return_ci95", result["return_ci95"])
        self.logger.dump(self.num_timesteps)
        if self.bar is not None:
            self.bar.set_postfix(real_return=f"{result['return_mean']:.2f}")
        return entry

    def _on_step(self) -> bool:
        if self.bar is not None:
            self.bar.update(self.model.n_envs)  # type: ignore[union-attr]
        if self.num_timesteps >= self._next:
            self._next += self.every
            self.evaluate_now()
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1][self.steps_key] != self.num_timesteps:
            self.evaluate_now()  # the final policy is always scored, whatever ``every``


def train_in_dream(task: str | Task, out: str | Path, config: DreamTrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train ``config.algo`` on DreamSim for ``task``; write ``policy.zip``, ``returns.json`` and ``tb/``
    under ``out``. Returns the summary: real returns over training, final and random-policy returns."""
    from dreamsim.integrations.sb3 import DreamSimVecEnv

    card = load_task(task)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the run folder {out} is a file: pass a folder")
    previous: BaseAlgorithm | None = None
    if config.init_policy is not None:
        previous = load_policy(config.init_policy)
        if not isinstance(previous, ALGOS[config.algo]):
            raise ValueError(
                f"{config.init_policy} holds a {type(previous).__name__} policy, not {config.algo}: "
                f"pass algo={type(previous).__name__.lower()!r} to continue it, or start a new run"
            )
        check_policy_fits(previous, card, config.init_policy)
        seen = policy_obs_mode(previous.observation_space)
        if seen != config.obs_mode:
            raise ValueError(f"{config.init_policy} observes {seen}, not {config.obs_mode}: pass obs_mode={seen!r} to go on")
        # A continued policy keeps the settings it was saved with; only learning_starts applies anew.
        for key, value in config.algo_kwargs.items():
            saved = getattr(previous, key, "no such setting")
            if key != "learning_starts" and saved != value:
                raise ValueError(
                    f"{config.init_policy} was saved with {key}={saved!r}, not {value!r}: a continued policy keeps "
                    f"its settings, so drop {key} from algo_kwargs or start a new run"
                )
    dream = DreamSimVecEnv(
        card,
        num_envs=config.num_envs,
        checkpoint=config.checkpoint,
        device=config.device,
        obs_mode=config.obs_mode,
        uncertainty_penalty=config.uncertainty_penalty,
        max_episode_steps=config.max_episode_steps,
        start_episodes=config.start_episodes,
    )
    dream.seed(config.seed)
    env = VecMonitor(dream)  # SB3 logs the dream episodes' returns (rollout/ep_rew_mean)
    frames = {"buffer_size": FRAME_BUFFER} if config.algo == "sac" and config.obs_mode != "state" else {}
    defaults = {**ALGO_DEFAULTS[config.algo], **frames}
    kwargs = {"seed": config.seed, "device": "cpu", "verbose": 0, **defaults, **config.algo_kwargs}
    if previous is not None:
        model = previous
        model.set_env(env)
        model.set_random_seed(config.seed)
        model.tensorboard_log = str(out / "tb")
        if isinstance(model, SAC):  # SB3 saves no replay buffer: fill a new one before the next update
            model.learning_starts = model.num_timesteps + kwargs["learning_starts"]
    else:
        model = ALGOS[config.algo](POLICIES[config.obs_mode], env, tensorboard_log=str(out / "tb"), **kwargs)
    bar = tqdm(total=config.steps, unit="step", desc=f"{config.algo} in DreamSim {card.name}", disable=not progress)
    callback = RealEvalCallback(card, config.eval_every, config.eval_episodes, config.seed + 10_000, bar)
    try:
        model.learn(config.steps, callback=callback, tb_log_name=config.algo, reset_num_timesteps=config.init_policy is None)
    finally:  # an interrupted or failed run releases its model and progress bar too
        bar.close()
        env.close()
    random_agent = RandomAgent(real_spaces(card)[1], seed=config.seed)
    random = evaluate(card, random_agent, config.eval_episodes, config.seed + 10_000)
    summary = {
        "task": card.name,
        "config": asdict(config),
        "real_env_steps_for_training": 0,
        "history": callback.history,
        "final": callback.history[-1],
        "random": random,
        "policy": str(out / "policy.zip"),
        "machine": describe_machine(),
    }
    write_json(out / "returns.json", summary)
    # The policy last: a run stopped before this line left the previous policy.zip, and
    # ``finished_run`` tells the two cases apart.
    write_atomic(out / "policy.zip", lambda p: model.save(p))
    return summary


def finished_run(out: str | Path, dream_steps: int) -> dict[str, Any] | None:
    """The summary of the run in ``out`` if it finished with at least ``dream_steps`` steps in all
    (its ``returns.json`` and ``policy.zip`` agree); else ``None``. A resumed loop skips such a stage."""
    out = Path(out)
    if not (out / "returns.json").is_file() or not (out / "policy.zip").is_file():
        return None
    summary = read_json(out / "returns.json", "delete it to run the agent stage again")
    steps = summary["final"]["dream_steps"]
    if steps < dream_steps or load_policy(out / "policy.zip").num_timesteps != steps:
        return None
    return summary
