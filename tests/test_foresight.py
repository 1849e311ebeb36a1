"""benchmarks/foresight.py: which imagined futures count as foreseeing a real event."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from dreamsim.model.checkpoint import load_for_task
from dreamsim.tasks import load_task

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def foresight():
    spec = importlib.util.spec_from_file_location("foresight", ROOT / "benchmarks" / "foresight.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_future_foresees_the_event_at_its_step_or_after_not_before(foresight):
    # Three steps ahead: column 2 is the event's step, columns 3 and 4 the window after it.
    future = np.array(
        [
            [0.0, 0.0, 2.0, 0.0, 0.0],  # at the event's step
            [0.0, 0.0, 0.0, 0.0, 2.0],  # late, within the window
            [2.0, 2.0, 0.0, 0.0, 0.0],  # only before the event's step
            [0.0, 0.0, 1.0, 1.0, 1.0],  # never above
        ]
    )
    assert foresight.foreseen(future, lead=3, above=1.5) == 0.5
    assert foresight.foreseen(future, lead=1, above=1.5) == 0.75


def test_imagined_futures_follow_the_given_actions(foresight, tiny_checkpoint, reacher_episodes):
    from dreamsim.data import EpisodeStore

    model = load_for_task(load_task("reacher"), tiny_checkpoint, torch.device("cpu")).model.eval()
    ep = next(EpisodeStore(reacher_episodes).episodes())

    def imagine(actions: np.ndarray) -> np.ndarray:
        torch.manual_seed(0)  # the same latent draws, so only the actions tell two futures apart
        return foresight.imagined_dim(model, ep.obs[0], ep.frames[0], actions, dim=2, samples=3)

    future = imagine(ep.actions[:6])
    assert future.shape == (3, 6) and np.isfinite(future).all()
    assert np.array_equal(future, imagine(ep.actions[:6]))
    assert not np.allclose(future, imagine(-ep.actions[:6]))
