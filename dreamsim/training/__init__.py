"""World-model training and its held-out evaluation."""

from dreamsim.training.evaluation import fidelity, fidelity_table
from dreamsim.training.trainer import TrainConfig, train

__all__ = ["TrainConfig", "fidelity", "fidelity_table", "train"]
