"""Recurrent state-space model with discrete latents and an ensemble of prior heads.

Latent state: ``deter`` (GRU, ``(N, deter)``) and ``stoch`` (one-hot categoricals,
``(N, stoch, classes)``). The prior predicts ``stoch`` from ``deter`` alone; the posterior also sees
the observation embedding. Each of the ``ensemble`` prior heads is trained against the posterior;
imagination samples from their mixture and reports their disagreement.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dreamsim.model.config import ModelConfig
from dreamsim.model.networks import mlp


class EnsembleLinear(nn.Module):
    """``K`` independent linear layers applied in one batched matmul: ``(K, N, in) -> (K, N, out)``."""

    def __init__(self, k: int, inp: int, out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, inp, out))
        self.bias = nn.Parameter(torch.zeros(k, 1, out))
        nn.init.uniform_(self.weight, -(inp**-0.5), inp**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class RSSM(nn.Module):
    def __init__(self, cfg: ModelConfig, embed_dim: int):
        super().__init__()
        self.cfg = cfg
        stoch_flat = cfg.stoch * cfg.classes
        self.img_in = nn.Sequential(nn.Linear(stoch_flat + cfg.action_dim, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU())
        self.gru = nn.GRUCell(cfg.hidden, cfg.deter)
        self.prior_hidden = EnsembleLinear(cfg.ensemble, cfg.deter, cfg.hidden)
        self.prior_norm = nn.LayerNorm(cfg.hidden)
        self.prior_out = EnsembleLinear(cfg.ensemble, cfg.hidden, stoch_flat)
        self.post = mlp(cfg.deter + embed_dim, cfg.hidden, stoch_flat, layers=1)

    def initial(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero ``deter (n, deter)`` and ``stoch (n, stoch, classes)``."""
        cfg = self.cfg
        return torch.zeros(n, cfg.deter, device=device), torch.zeros(n, cfg.stoch, cfg.classes, device=device)

    def _logits(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw outputs ``(..., stoch*classes)`` -> log-probs ``(..., stoch, classes)`` with unimix."""
        cfg = self.cfg
        probs = F.softmax(raw.reshape(*raw.shape[:-1], cfg.stoch, cfg.classes).float(), -1)
        probs = (1 - cfg.unimix) * probs + cfg.unimix / cfg.classes
        return probs.log()

    def step_deter(self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Advance the GRU by one action: ``(N, deter)``."""
        x = self.img_in(torch.cat([stoch.flatten(1), action], -1))
        return self.gru(x, deter)

    def prior_logits(self, deter: torch.Tensor, grouped: bool = False) -> torch.Tensor:
        """Per-head prior log-probs ``(K, N, stoch, classes)``: every head on every row.

        ``grouped=True`` (``N`` a multiple of ``K``) instead gives ``(N, stoch, classes)``, row block
        ``k`` of ``N / K`` rows from head ``k`` alone: one head per trajectory, at ``1 / K`` the cost.
        """
        k = self.cfg.ensemble
        x = deter.reshape(k, -1, deter.shape[-1]) if grouped else deter.unsqueeze(0).expand(k, *deter.shape)
        x = F.silu(self.prior_norm(self.prior_hidden(x)))
        logits = self._logits(self.prior_out(x))
        return logits.flatten(0, 1) if grouped else logits

    def post_logits(self, deter: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        """Posterior log-probs ``(N, stoch, classes)``."""
        return self._logits(self.post(torch.cat([deter, embed], -1)))

    @staticmethod
    def sample(logits: torch.Tensor, uniform: torch.Tensor | None = None) -> torch.Tensor:
        """One-hot sample ``(..., stoch, classes)`` by Gumbel-max, with straight-through gradients.

        ``uniform`` (same shape, in (0, 1)) makes the draw a pure function of its inputs.
        """
        if uniform is None:
            uniform = torch.rand_like(logits)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-6, 1 - 1e-6)))
        index = (logits + gumbel).argmax(-1)
        onehot = F.one_hot(index, logits.shape[-1]).to(logits.dtype)
        probs = logits.exp()
        return onehot + probs - probs.detach()

    @staticmethod
    def ensemble(prior_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The heads ``(K, N, stoch, classes)`` as one distribution: the log-probs of their mixture
        ``(N, stoch, classes)`` and their disagreement ``(N,)``, the std of head probabilities across
        heads, summed over classes and averaged over latents (0 when all heads agree).

        The std is written out: ``Tensor.std`` over the leading dim is ~10x slower on CPU."""
        probs = prior_logits.exp()
        mean = probs.mean(0)
        spread = (probs - mean).square().mean(0).sqrt()
        return mean.log(), spread.sum(-1).mean(-1)
