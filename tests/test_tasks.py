import dataclasses

import numpy as np
import pytest

import dreamsim
from dreamsim.tasks import load_task, make_real


def test_cards_cover_the_four_tasks():
    assert {"reacher", "halfcheetah", "hopper", "inverted_pendulum"} <= set(dreamsim.list_tasks())
    card = load_task("reacher")
    assert card.gym_id == "Reacher-v5" and card.frame_size == 64 and card.episode_length == 50


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown task 'nope'.*reacher"):
        load_task("nope")


@pytest.mark.parametrize("task", ["reacher", "inverted_pendulum"])
def test_make_real_renders_the_card_frame(task):
    card = load_task(task)
    env = make_real(task)
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (card.frame_size, card.frame_size, 3) and frame.dtype == np.uint8


def test_reacher_camera_shows_arm_and_target():
    env = make_real("reacher")
    env.reset(seed=3)
    frame = env.render().astype(int)
    env.close()
    # The floor is grey; the arm and target are coloured. Top-down, they cover a good share of pixels.
    colourful = (np.ptp(frame, axis=-1) > 40).mean()
    assert colourful > 0.01


def test_card_render_flags_reach_the_frames():
    """Each render flag of a card changes the picture, never the physics (Reacher has no lights or
    materials, so shadows and reflections are tried on Hopper)."""
    reacher, hopper = load_task("reacher"), load_task("hopper")
    assert reacher.joints and not hopper.shadows and not hopper.reflections
    pairs = {
        "joints": (reacher, dataclasses.replace(reacher, joints=False)),
        "shadows": (hopper, dataclasses.replace(hopper, shadows=True)),
        "reflections": (hopper, dataclasses.replace(hopper, reflections=True)),
    }
    for flag, cards in pairs.items():
        frames, states = [], []
        for card in cards:
            env = make_real(card)
            env.reset(seed=3)
            obs, *_ = env.step(np.full(env.action_space.shape, 0.5, np.float32))
            frames.append(env.render())
            states.append(obs)
            env.close()
        assert not np.array_equal(*frames), flag
        np.testing.assert_array_equal(*states)
