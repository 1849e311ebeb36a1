"""Shared fixtures: a few real Reacher episodes and a tiny checkpoint trained on them (CPU, seconds)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; the library never sets it

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from dreamsim.data import EpisodeStore, collect
from dreamsim.training import TrainConfig, train

TINY = TrainConfig(
    steps=4, batch_size=4, seq_len=8, preset="tiny", eval_every=2, checkpoint_every=2, eval_episodes=2, device="cpu"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def cpu_unless_marked_gpu(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's tolerances and learning thresholds are CPU ones, so device "auto" means the CPU
    here, on a machine with a GPU too; tests marked ``gpu`` see the GPU."""
    if "gpu" not in request.keywords:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture(scope="session")
def reacher_episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real Reacher episodes (200 steps), collected by two spawned workers."""
    out = tmp_path_factory.mktemp("episodes") / "reacher"
    collect("reacher", out, steps=200, workers=2, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_run(reacher_episodes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder holding a tiny-preset training checkpoint for reacher."""
    out = tmp_path_factory.mktemp("runs") / "reacher"
    train("reacher", reacher_episodes, out, TINY)
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run: Path) -> Path:
    return tiny_run / "checkpoint"


@pytest.fixture(scope="session")
def dot_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A tiny model of the synthetic square world (``s' = a``, reward ``-|s' - GOAL|``), trained for
    600 CPU steps: ``(checkpoint folder, final metrics)``."""
    import numpy as np
    from synthetic import DOT_TASK, dot_episode

    root = tmp_path_factory.mktemp("dot")
    rng = np.random.default_rng(0)
    store = EpisodeStore(root / "episodes")
    for i in range(44):  # named in order, so the train/validation split does not vary between runs
        store.write(dot_episode(rng)).rename(store.root / f"{i:03d}-20.npz")
    # With a random split, lr 1e-3 left the frame decoder flat in about 1 run of 10 even at 600 steps.
    cfg = TrainConfig(steps=600, batch_size=16, seq_len=10, lr=1e-3, eval_every=600, checkpoint_every=600, device="cpu")
    metrics = train(DOT_TASK, store.root, root / "run", cfg)
    return root / "run" / "checkpoint", metrics


@pytest.fixture
def never_terminates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The continue head always says 'go on', so episodes end only by truncation."""
    from dreamsim.model import WorldModel

    monkeypatch.setattr(WorldModel, "continue_prob", lambda self, feat: torch.ones(len(feat), device=feat.device))


@pytest.fixture(scope="session")
def tensorboard_tags() -> Callable[[Path], set[str]]:
    """``tags(folder)``: every scalar and image tag in the TensorBoard event files under ``folder``."""
    return _tensorboard_tags


def _tensorboard_tags(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in folder.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 1})
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"]) | set(accumulator.Tags()["images"])
    return tags
