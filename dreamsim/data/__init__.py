"""Real MuJoCo episodes: parallel collection, the on-disk episode store, and sequence sampling."""

from dreamsim.data.collect import collect
from dreamsim.data.store import Episode, EpisodeStore, SequenceSampler

__all__ = ["Episode", "EpisodeStore", "SequenceSampler", "collect"]
