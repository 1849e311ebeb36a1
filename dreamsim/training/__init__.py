"""World-model training, its held-out evaluation, and refitting the frame decoder alone."""

from dreamsim.training.decoder import DecoderConfig, tune_decoder
from dreamsim.training.evaluation import fidelity, fidelity_table
from dreamsim.training.trainer import TrainConfig, train

__all__ = ["DecoderConfig", "TrainConfig", "fidelity", "fidelity_table", "train", "tune_decoder"]
