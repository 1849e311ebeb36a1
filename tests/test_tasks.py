import dataclasses

import numpy as np
import pytest

import dreamsim
from dreamsim import tasks
from dreamsim.tasks import Camera, load_task, make_real


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


def test_action_repeat_slows_the_twins_frame_rate_to_real_time():
    card = load_task("hopper")
    assert card.action_repeat == 2
    env = make_real(card, render=False)
    assert env.metadata["render_fps"] == env.unwrapped.metadata["render_fps"] / 2  # one step spans two frames
    env.close()


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


def _body_share(env, x: float) -> float:
    """Share of the frame in the body's tan colour with the body moved to ``x`` along the track."""
    sim = env.unwrapped
    qpos = sim.data.qpos.copy()
    qpos[0] = x
    sim.set_state(qpos, sim.data.qvel)
    f = env.render().astype(int)
    return float(((f[..., 0] - f[..., 1] > 25) & (f[..., 1] - f[..., 2] > 25)).mean())


def test_track_camera_keeps_a_runner_in_view():
    """A card may name a camera of the MuJoCo model: HalfCheetah's `track` camera follows the body,
    so 5 m down the track the cheetah is as large in the frame as at the start, where a fixed free
    camera shows only the floor."""
    card = load_task("halfcheetah")
    views = {
        "track": Camera(name="track"),
        "fixed": Camera(distance=3.0, elevation=-15.0, azimuth=90.0, lookat=(0.0, 0.0, 0.3)),
    }
    shares = {}
    for name, camera in views.items():
        env = make_real(dataclasses.replace(card, camera=camera))
        env.reset(seed=0)
        shares[name] = (_body_share(env, 0.0), _body_share(env, 5.0))
        env.close()
    assert shares["track"][0] > 0.005 and shares["track"][1] > 0.5 * shares["track"][0]
    assert shares["fixed"][0] > 0.005 and shares["fixed"][1] == 0.0


def test_unknown_camera_name_lists_the_cameras():
    card = dataclasses.replace(load_task("halfcheetah"), camera=Camera(name="nope"))
    with pytest.raises(ValueError, match=r"no camera 'nope'; its cameras are \['track'\]"):
        make_real(card)


def test_camera_is_a_name_or_a_pose(tmp_path, monkeypatch):
    text = (tasks.cards_dir() / "reacher.toml").read_text()
    text = text.replace('name = "reacher"', 'name = "both"', 1)
    (tmp_path / "both.toml").write_text(text.replace("[camera]", '[camera]\nname = "track"', 1))
    monkeypatch.setattr(tasks, "cards_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match=r"named camera and free-camera settings \['azimuth', .*keep one"):
        load_task("both")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "reacher"', 'name = "other"', "name 'other' differs from the file name"),
        ("joints = true", 'joints = "no"', "joints must be true or false, got 'no'"),
        ("frame_size = 64", "frame_size = 64.5", "frame_size must be a positive integer, got 64.5"),
        ("action_repeat = 1", "action_repeat = 0", "action_repeat must be a positive integer, got 0"),
        ("lookat = [0.0, 0.0, 0.0]", "lookat = [0.0, 0.0]", r"lookat must be a point \[x, y, z\]"),
        ('policy = "random"', 'policy = "fast"', r"policy must be one of \('random', 'mpc'\)"),
        ("horizons = [1, 5, 15, 50]", "horizons = []", "at least one horizon"),
        ("horizons = [1, 5, 15, 50]", "horizons = [0, 5]", "each validate horizon must be a positive integer, got 0"),
        (
            "max_state_error_ratio = 0.75",
            "max_state_error_ratio = 0",
            "ratio must be a finite positive number, got 0",
        ),
        ("min_psnr_gain = 0.0", 'min_psnr_gain = "1"', "min_psnr_gain must be a finite number, got '1'"),
        ("min_psnr_gain = 0.0", "min_psnr_gain = nan", "min_psnr_gain must be a finite number, got nan"),
        (
            "max_state_error_ratio = 0.75",
            "max_state_error_ratio = inf",
            "ratio must be a finite positive number, got inf",
        ),
    ],
)
def test_a_malformed_card_names_itself_and_the_field(tmp_path, monkeypatch, old, new, message):
    text = (tasks.cards_dir() / "reacher.toml").read_text()
    assert old in text
    (tmp_path / "reacher.toml").write_text(text.replace(old, new, 1))
    monkeypatch.setattr(tasks, "cards_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match=rf"task card .*reacher.toml is malformed \(.*{message}"):
        load_task("reacher")


def test_a_card_section_that_is_not_a_table_is_named(tmp_path, monkeypatch):
    text = (tasks.cards_dir() / "reacher.toml").read_text()
    text = text[: text.index("[validate]")]  # the card's last section
    (tmp_path / "reacher.toml").write_text(text.replace('name = "reacher"', 'name = "reacher"\nvalidate = "all"', 1))
    monkeypatch.setattr(tasks, "cards_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match=r"malformed \(\[validate\] must be a table, got 'all'\)"):
        load_task("reacher")


def test_two_cards_with_one_title_are_refused(tmp_path, monkeypatch):
    from dreamsim.registration import register_envs

    text = (tasks.cards_dir() / "reacher.toml").read_text()
    (tmp_path / "reacher.toml").write_text(text)
    (tmp_path / "arm.toml").write_text(text.replace('name = "reacher"', 'name = "arm"', 1))  # title still Reacher
    monkeypatch.setattr(tasks, "cards_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match="'arm' and 'reacher' share the title 'Reacher'"):
        register_envs()
