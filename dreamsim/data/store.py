"""The episode store: one ``.npz`` file per episode, written atomically, and a sequence sampler.

An episode of ``T`` steps holds ``T + 1`` observations (the reset one, then one per step):

    frames (T+1, H, W, 3) uint8     obs (T+1, D) float32      qpos (T+1, nq), qvel (T+1, nv) float64
    actions (T, A) float32          rewards (T,) float32      terminated, truncated (T,) bool
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreamsim.files import NPZ_ERRORS, write_atomic

_FIELDS = ("frames", "obs", "actions", "rewards", "terminated", "truncated", "qpos", "qvel")


@dataclass(frozen=True)
class Episode:
    frames: np.ndarray
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    qpos: np.ndarray
    qvel: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """State, action and frame sizes: what tells one task's episodes from another's."""
        return self.obs.shape[1], self.actions.shape[1], self.frames.shape[1]

    def check(self) -> None:
        """Raise ``ValueError`` if the arrays do not describe one consistent episode."""
        steps = len(self.actions)
        for name in ("frames", "obs", "qpos", "qvel"):
            if len(getattr(self, name)) != steps + 1:
                raise ValueError(f"episode field {name!r} has {len(getattr(self, name))} rows, expected {steps + 1}")
        for name in ("rewards", "terminated", "truncated"):
            if len(getattr(self, name)) != steps:
                raise ValueError(f"episode field {name!r} has {len(getattr(self, name))} rows, expected {steps}")
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4:
            raise ValueError(f"episode frames must be uint8 (T+1, H, W, 3), got {self.frames.dtype} {self.frames.shape}")


class EpisodeStore:
    """A folder of episodes. Writing never touches existing files, so re-runs only add."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def paths(self) -> list[Path]:
        if (self.root / "model.safetensors").is_file():  # its start_states.npz is no episode
            raise ValueError(
                f"{self.root} is a model checkpoint, not a folder of episodes: pass one such as episodes/<task>, "
                "which `dreamsim collect <task>` writes"
            )
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("*.npz") if not p.name.startswith("."))  # dot-files: writes in flight

    def empty_error(self, remedy: str) -> ValueError:
        """The error for a store with no episodes, which names a wrong path before ``remedy``."""
        if self.root.is_file():
            return ValueError(f"{self.root} is a file: pass the folder of episodes")
        if not self.root.exists():
            return ValueError(f"{self.root} does not exist: {remedy}")
        nested = sorted({p.parent for p in self.root.glob("*/*.npz") if not p.name.startswith(".")})
        nested = [d for d in nested if not (d / "model.safetensors").is_file()]  # checkpoints hold no episodes
        if nested:
            names = ", ".join(str(d) for d in nested)
            return ValueError(f"{self.root} holds no episodes itself, but its subfolders do ({names}): pass the task's one")
        return ValueError(f"no episodes in {self.root}: {remedy}")

    def __len__(self) -> int:
        return len(self.paths())

    def steps(self) -> int:
        """Agent steps stored, from the file names (``<id>-<steps>.npz``) without reading the files."""
        total = 0
        for path in self.paths():
            _, _, count = path.stem.rpartition("-")
            if not count.isdigit():
                raise ValueError(f"{path} is not named like an episode file (<id>-<steps>.npz): move it out of {self.root}")
            total += int(count)
        return total

    def write(self, episode: Episode) -> Path:
        """Write atomically: a temporary file in the same folder, then a rename."""
        episode.check()
        arrays = {k: getattr(episode, k) for k in _FIELDS}
        path = self.root / f"{uuid.uuid4().hex}-{len(episode)}.npz"
        return write_atomic(path, lambda tmp: np.savez_compressed(tmp, **arrays))  # type: ignore[arg-type]

    @staticmethod
    def read(path: str | Path) -> Episode:
        try:
            with np.load(path) as data:
                episode = Episode(**{k: data[k] for k in _FIELDS})
        except NPZ_ERRORS as err:
            raise ValueError(f"episode file {path} is unreadable ({err}); delete it and collect again") from err
        episode.check()
        return episode

    def episodes(self, paths: Iterable[Path] | None = None) -> Iterator[Episode]:
        """The episodes of ``paths`` (default: all), refused where one's sizes differ from the first's
        (a folder that mixes tasks)."""
        first: tuple[Path, tuple[int, int, int]] | None = None
        for path in self.paths() if paths is None else paths:
            episode = self.read(path)
            if first is None:
                first = path, episode.sizes
            elif episode.sizes != first[1]:
                raise ValueError(
                    f"{self.root} mixes tasks: {path.name} has state, action and frame sizes {episode.sizes}, "
                    f"{first[0].name} {first[1]}; keep one task's episodes per folder"
                )
            yield episode

    def observations(self, limit: int, seed: int = 0) -> dict[str, np.ndarray]:
        """About ``limit`` real observations drawn at random from every episode: ``obs (n, D)`` and
        uint8 ``frames (n, H, W, 3)``, to start imagined rollouts from. A terminated episode's last
        observation is left out: nothing follows it."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        paths = self.paths()
        if not paths:
            raise self.empty_error(f"collect some to start imagined episodes from (`dreamsim collect <task> --out {self.root}`)")
        keep = min(1.0, limit / (self.steps() + len(paths)))
        rng = np.random.default_rng(seed)
        obs, frames = [], []
        for ep in self.episodes():
            rows = np.arange(len(ep) + 1 - int(len(ep) > 0 and ep.terminated[-1]))
            rows = rows[rng.random(len(rows)) < keep]
            obs.append(ep.obs[rows])
            frames.append(ep.frames[rows])
        return {"obs": np.concatenate(obs), "frames": np.concatenate(frames)}

    def split(self, val_every: int = 10) -> tuple[list[Path], list[Path]]:
        """Deterministic train/validation split: about one episode in ``val_every`` is held out, chosen
        by a hash of its file name, so episodes added later never move one across the split (a grown
        store, as in ``dreamsim loop``, keeps its validation episodes unseen). None is held out when
        that would leave nothing to train on."""
        paths = self.paths()
        val = [p for p in paths if zlib.crc32(p.name.encode()) % val_every == 0]
        if len(val) == len(paths):
            val = []
        held = set(val)
        return [p for p in paths if p not in held], val


class SequenceSampler:
    """Samples fixed-length windows from a list of episodes held in memory, each step equally likely
    to start a window: episodes are drawn in proportion to their length, so a task whose random
    episodes are short (a pendulum that falls) does not drown the long ones. A window may start at
    any step, its tail padded (``mask`` 0) past the episode's end: the model starts from a single
    observation at the window's start, and it must learn to do so mid-episode too, not only at resets.

    ``sample(batch, length)`` returns numpy arrays with a leading ``(B, L)``: ``frames``,
    ``obs`` and ``cont`` (1 unless the step ends by termination) at steps ``s .. s+L-1``;
    ``actions`` and ``rewards`` shifted so that index ``t`` holds the transition *into* step
    ``t`` (index 0 is zeros and carries no loss).
    """

    def __init__(self, episodes: list[Episode], seed: int = 0):
        self.episodes = [e for e in episodes if len(e) > 0]
        if not self.episodes:
            raise ValueError("no episodes to sample from: run `dreamsim collect <task>` first")
        self.rng = np.random.default_rng(seed)
        self.steps = int(sum(len(e) for e in self.episodes))
        self._weights = np.array([len(e) for e in self.episodes], np.float64) / self.steps

    def sample(self, batch: int, length: int) -> dict[str, np.ndarray]:
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("frames", "obs", "actions", "rewards", "cont", "mask")}
        for _ in range(batch):
            ep = self.episodes[self.rng.choice(len(self.episodes), p=self._weights)]
            n = len(ep) + 1  # observations in the episode
            start = int(self.rng.integers(n - 1))  # any observation with a step after it
            stop = min(start + length, n)
            pad = length - (stop - start)
            out["frames"].append(_pad(ep.frames[start:stop], pad))
            out["obs"].append(_pad(ep.obs[start:stop], pad))
            act = np.zeros((stop - start, ep.actions.shape[1]), np.float32)
            rew = np.zeros(stop - start, np.float32)
            cont = np.ones(stop - start, np.float32)
            act[1:] = ep.actions[start : stop - 1]
            rew[1:] = ep.rewards[start : stop - 1]
            cont[1:] = 1.0 - ep.terminated[start : stop - 1]
            out["actions"].append(_pad(act, pad))
            out["rewards"].append(_pad(rew, pad))
            out["cont"].append(_pad(cont, pad))
            out["mask"].append(_pad(np.ones(stop - start, np.float32), pad))
        return {k: np.stack(v) for k, v in out.items()}


def _pad(x: np.ndarray, pad: int) -> np.ndarray:
    if pad == 0:
        return x
    return np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
