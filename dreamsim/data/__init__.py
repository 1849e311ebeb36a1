"""Real MuJoCo episodes: parallel collection, the on-disk episode store, and sequence sampling."""

from dreamsim.data.collect import collect, collect_with_agent, collection_agent
from dreamsim.data.store import Episode, EpisodeStore, SequenceSampler

__all__ = ["Episode", "EpisodeStore", "SequenceSampler", "collect", "collect_with_agent", "collection_agent"]
