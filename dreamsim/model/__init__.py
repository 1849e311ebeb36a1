"""The world model: configuration and presets, networks, RSSM, checkpoint I/O."""

from dreamsim.model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from dreamsim.model.config import PRESETS, ModelConfig, preset
from dreamsim.model.world_model import WorldModel

__all__ = ["PRESETS", "Checkpoint", "ModelConfig", "WorldModel", "load_checkpoint", "preset", "save_checkpoint"]
