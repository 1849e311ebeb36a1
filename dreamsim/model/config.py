"""World-model settings: one frozen dataclass and the named presets ``tiny``, ``small``, ``base``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and loss weights of the world model (a DreamerV3-style RSSM; README lists where it departs from DreamerV3)."""

    state_dim: int
    action_dim: int
    frame_size: int = 64
    cnn_depth: int = 16  # channels of the first conv stage; doubles every stage
    hidden: int = 256  # width of every MLP
    deter: int = 256  # GRU state
    stoch: int = 16  # number of categorical latents
    classes: int = 16  # classes per categorical
    ensemble: int = 5  # prior heads; their disagreement is the uncertainty signal
    unimix: float = 0.01
    free_bits: float = 1.0
    kl_dynamics: float = 0.5
    kl_representation: float = 0.1
    state_loss_scale: float = 10.0  # state is the default observation: weigh it against the 64x64x3 frame
    # The first GRU state comes from the first observation (else zeros, with everything the model
    # knows of that observation squeezed through one discrete sample): precise velocities from one
    # observation, so episodes can start mid-episode. Every preset turns it on; older checkpoints have it off.
    deter_from_obs: bool = False
    # The frame decoder blends its drawing with the real frame the rollout started from, so what
    # did not move can be copied exactly (see ``FrameDecoder``). Every preset turns it on; older checkpoints have it off.
    frame_reference: bool = False

    def __post_init__(self) -> None:
        sizes = ("state_dim", "action_dim", "frame_size", "cnn_depth", "hidden", "deter", "stoch", "classes", "ensemble")
        bad = [f"{n}={getattr(self, n)!r}" for n in sizes if type(getattr(self, n)) is not int or getattr(self, n) < 1]
        if bad:
            raise ValueError(f"model sizes must be positive ints: {', '.join(bad)}")

    @property
    def latent_dim(self) -> int:
        """Size of the flat latent ``[deter, stoch * classes]``."""
        return self.deter + self.stoch * self.classes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"model config has unknown keys {sorted(unknown)}; is the checkpoint from a newer DreamSim?")
        return cls(**data)


_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(cnn_depth=4, hidden=32, deter=32, stoch=8, classes=8, ensemble=2),  # tests: seconds on CPU
    "small": dict(cnn_depth=16, hidden=256, deter=256, stoch=16, classes=16, ensemble=5),  # shipped CPU default
    "base": dict(cnn_depth=32, hidden=512, deter=1024, stoch=32, classes=32, ensemble=5),  # GPU
}

PRESETS = tuple(_PRESETS)


def preset(name: str, state_dim: int, action_dim: int, frame_size: int = 64, **overrides: Any) -> ModelConfig:
    """The named preset for a task with the given observation and action sizes."""
    if name not in _PRESETS:
        raise ValueError(f"unknown model preset {name!r}: choose one of {list(_PRESETS)}")
    sizes = _PRESETS[name]
    config = ModelConfig(
        state_dim=state_dim, action_dim=action_dim, frame_size=frame_size, deter_from_obs=True, frame_reference=True, **sizes
    )
    return replace(config, **overrides)
