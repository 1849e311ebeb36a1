"""The world model: encoder, RSSM dynamics and heads (frame, state, reward, continue), with its loss.

Sequence convention (see ``SequenceSampler``): index ``t`` of ``actions``/``rewards`` is the
transition *into* step ``t``; step 0 sees only its observation, and its first GRU state comes from
that observation (``deter_from_obs``, every preset) or is zeros (older checkpoints).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dreamsim.model.config import ModelConfig
from dreamsim.model.networks import Encoder, FrameDecoder, mlp, symlog
from dreamsim.model.rssm import RSSM


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


def frames_to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` -> float ``(..., 3, H, W)`` in [-0.5, 0.5]."""
    return frames.movedim(-1, -3).float() / 255.0 - 0.5


def frames_to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """float ``(..., 3, H, W)`` in [-0.5, 0.5] -> uint8 ``(..., H, W, 3)``."""
    return ((frames.float() + 0.5).clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).movedim(-3, -1)


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) summed over classes and latents: ``(..., stoch, classes) -> (...)``."""
    return (p_logits.exp() * (p_logits - q_logits)).sum((-1, -2))


class WorldModel(nn.Module):
    state_mean: torch.Tensor
    state_std: torch.Tensor

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.frame_size, cfg.cnn_depth, cfg.state_dim, cfg.hidden)
        self.rssm = RSSM(cfg, self.encoder.out_dim)
        feat = cfg.latent_dim
        self.frame_decoder = FrameDecoder(feat, cfg.frame_size, cfg.cnn_depth, cfg.frame_reference)
        self.state_decoder = mlp(feat, cfg.hidden, cfg.state_dim)
        self.reward_head = mlp(feat, cfg.hidden, 1)
        self.cont_head = mlp(feat, cfg.hidden, 1)
        self.initial_deter = nn.Linear(self.encoder.out_dim, cfg.deter) if cfg.deter_from_obs else None
        # State normalisation, fitted to the training data and saved with the weights.
        self.register_buffer("state_mean", torch.zeros(cfg.state_dim))
        self.register_buffer("state_std", torch.ones(cfg.state_dim))

    # -- observations in, predictions out ---------------------------------------------------------
    def set_state_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.state_mean.copy_(mean)
        self.state_std.copy_(std.clamp_min(1e-3))

    def normalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return (state.float() - self.state_mean) / self.state_std

    def embed(self, frames: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """uint8 frames ``(N, H, W, 3)`` and raw states ``(N, D)`` -> embedding ``(N, E)``."""
        return self.encoder(frames_to_float(frames), self.normalize_state(states))

    @staticmethod
    def features(deter: torch.Tensor, stoch: torch.Tensor) -> torch.Tensor:
        """Flat latent ``(N, deter + stoch * classes)``."""
        return torch.cat([deter, stoch.flatten(-2)], -1)

    def decode_state(self, feat: torch.Tensor) -> torch.Tensor:
        """Raw (unnormalised) state ``(N, D)``."""
        return self.state_decoder(feat).float() * self.state_std + self.state_mean

    def decode_frame(self, feat: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 frame ``(N, H, W, 3)``. ``reference``: the uint8 real frames ``(N, H, W, 3)`` the
        rollouts started from (their last real observation); read only when ``cfg.frame_reference``."""
        ref = None if reference is None or not self.cfg.frame_reference else frames_to_float(reference)
        return frames_to_uint8(self.frame_decoder(feat, ref))

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        """Predicted reward ``(N,)``."""
        return symexp(self.reward_head(feat).float().squeeze(-1))

    def continue_prob(self, feat: torch.Tensor) -> torch.Tensor:
        """Probability ``(N,)`` that the episode goes on after this step."""
        return torch.sigmoid(self.cont_head(feat).float().squeeze(-1))

    # -- latent dynamics ----------------------------------------------------------------------------
    def posterior(
        self, deter: torch.Tensor, frames: torch.Tensor, states: torch.Tensor, uniform: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Sample ``stoch (N, stoch, classes)`` given ``deter`` and a real observation."""
        return self.rssm.sample(self.rssm.post_logits(deter, self.embed(frames, states)), uniform)

    def initial(
        self, frames: torch.Tensor, states: torch.Tensor, uniform: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent ``(deter, stoch)`` for episodes starting at real observations ``(N, ...)``."""
        embed = self.embed(frames, states)
        deter = self.first_deter(embed)
        return deter, self.rssm.sample(self.rssm.post_logits(deter, embed), uniform)

    def first_deter(self, embed: torch.Tensor) -> torch.Tensor:
        """The GRU state ``(N, deter)`` at a sequence's first observation, from its embedding ``(N, E)``
        (zeros when ``cfg.deter_from_obs`` is off)."""
        if self.initial_deter is None:
            return self.rssm.initial(len(embed), embed.device)[0]
        return torch.tanh(self.initial_deter(embed))

    def imagine(
        self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor, uniform: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One prior step: ``(deter, stoch, disagreement (N,))`` after ``action (N, A)``."""
        deter = self.rssm.step_deter(deter, stoch, action)
        prior = self.rssm.prior_logits(deter)
        mixture, disagreement = self.rssm.ensemble(prior)
        return deter, self.rssm.sample(mixture, uniform), disagreement

    # -- training -----------------------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor], open_loop_steps: int = 0) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss on a batch of sequences (``SequenceSampler`` layout, ``(B, T, ...)`` tensors).

        ``open_loop_steps`` > 0 adds the state and reward errors of prior rollouts that long, started
        from the posterior at every step of the window that leaves room for them (see ``_open_loop_errors``).
        """
        cfg = self.cfg
        frames, states, actions = batch["frames"], batch["obs"], batch["actions"]
        mask = batch["mask"]
        b, t = mask.shape
        embed = self.encoder(frames_to_float(frames.flatten(0, 1)), self.normalize_state(states.flatten(0, 1)))
        embed = embed.reshape(b, t, -1)
        deter = self.first_deter(embed[:, 0])
        deters: list[torch.Tensor] = []
        stochs: list[torch.Tensor] = []
        posts: list[torch.Tensor] = []
        for i in range(t):
            if i > 0:
                deter = self.rssm.step_deter(deter, stochs[-1], actions[:, i])
            post = self.rssm.post_logits(deter, embed[:, i])
            stoch = self.rssm.sample(post)
            deters.append(deter)
            stochs.append(stoch)
            posts.append(post)
        deter_seq = torch.stack(deters, 1).flatten(0, 1)  # (B*T, D)
        feat = self.features(deter_seq, torch.stack(stochs, 1).flatten(0, 1))  # (B*T, F)
        post = torch.stack(posts, 1)  # (B, T, S, C)
        # The priors read only the GRU state, so every time step goes through the heads in one call
        # after the sequential loop rather than one call per step: same result, fewer small kernels.
        prior = self.rssm.prior_logits(deter_seq).reshape(-1, b, t, cfg.stoch, cfg.classes)  # (K, B, T, S, C)

        flat_mask = mask.flatten()
        trans_mask = mask.clone()
        trans_mask[:, 0] = 0  # step 0 has no incoming transition
        trans_mask = trans_mask.flatten()

        def masked_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            return (x * m).sum() / m.sum().clamp_min(1)

        target = frames_to_float(frames.flatten(0, 1))
        # The reference of every step is its window's first frame: as an imagined rollout's is the
        # real frame it started from.
        ref = frames_to_float(frames[:, :1]).expand(-1, t, -1, -1, -1).flatten(0, 1) if cfg.frame_reference else None
        frame_err = (self.frame_decoder(feat, ref).float() - target).square().sum((1, 2, 3))
        state_err = (self.state_decoder(feat).float() - self.normalize_state(states.flatten(0, 1))).square().sum(-1)
        reward_err = (self.reward_head(feat).float().squeeze(-1) - symlog(batch["rewards"].flatten())).square()
        cont_err = F.binary_cross_entropy_with_logits(
            self.cont_head(feat).float().squeeze(-1), batch["cont"].flatten(), reduction="none"
        )
        dyn = _kl(post.detach(), prior).mean(0).flatten()  # mean over heads -> (B*T,)
        rep = _kl(post, prior.detach()).mean(0).flatten()
        terms = {
            "frame": masked_mean(frame_err, flat_mask),
            "state": masked_mean(state_err, flat_mask),
            "reward": masked_mean(reward_err, trans_mask),
            "continue": masked_mean(cont_err, trans_mask),
            "kl_dynamics": masked_mean(dyn.clamp_min(cfg.free_bits), flat_mask),
            "kl_representation": masked_mean(rep.clamp_min(cfg.free_bits), flat_mask),
        }
        total = (
            terms["frame"]
            + cfg.state_loss_scale * terms["state"]
            + terms["reward"]
            + terms["continue"]
            + cfg.kl_dynamics * terms["kl_dynamics"]
            + cfg.kl_representation * terms["kl_representation"]
        )
        if open_loop_steps:
            state_ol, reward_ol = self._open_loop_errors(deters, stochs, batch, open_loop_steps)
            terms["open_loop_state"], terms["open_loop_reward"] = state_ol, reward_ol
            total = total + cfg.state_loss_scale * state_ol + reward_ol
        metrics = {f"loss/{k}": float(v.detach()) for k, v in terms.items()}
        metrics["loss/total"] = float(total.detach())
        metrics["kl/value"] = float(masked_mean(rep.detach(), flat_mask))
        metrics["kl/ensemble_disagreement"] = float(masked_mean(self.rssm.ensemble(prior.detach())[1].flatten(), flat_mask))
        return total, metrics

    def _open_loop_errors(
        self, deters: list[torch.Tensor], stochs: list[torch.Tensor], batch: dict[str, torch.Tensor], steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean squared state (normalised) and symlog-reward errors of imagined rollouts of ``steps``
        real actions from the posterior latents at window steps ``0 .. T-steps-1``, over every
        predicted step still inside its episode.

        The one-step losses teach the prior a single step from a filtered latent; an imagined episode
        feeds it its own samples for many. Training on those rollouts penalises the drift that
        compounds there (as the multi-step losses of TD-MPC and MuZero do). On data of mostly one
        policy it can trade away accuracy off that policy's path (benchmarks/NOTES.md)."""
        states, actions, rewards, mask = batch["obs"], batch["actions"], batch["rewards"], batch["mask"]
        n = mask.shape[1] - steps  # rollouts per window
        if steps < 0 or n < 1:
            raise ValueError(f"open_loop_steps must be from 0 to the window length - 1 = {mask.shape[1] - 1}, got {steps}")
        deter = torch.stack(deters[:n], 1).flatten(0, 1)
        stoch = torch.stack(stochs[:n], 1).flatten(0, 1)
        state_errs, reward_errs, masks = [], [], []
        for k in range(1, steps + 1):
            # Rollout s takes the action into step s + k, and is scored on that step's observation and reward.
            deter, stoch, _ = self.imagine(deter, stoch, actions[:, k : k + n].flatten(0, 1))
            feat = self.features(deter, stoch)
            target = self.normalize_state(states[:, k : k + n].flatten(0, 1))
            state_errs.append((self.state_decoder(feat).float() - target).square().sum(-1))
            reward_errs.append((self.reward_head(feat).float().squeeze(-1) - symlog(rewards[:, k : k + n].flatten())).square())
            masks.append(mask[:, k : k + n].flatten())
        m = torch.cat(masks)
        weight = m.sum().clamp_min(1)
        return (torch.cat(state_errs) * m).sum() / weight, (torch.cat(reward_errs) * m).sum() / weight

    @torch.no_grad()
    def open_loop(
        self, frames: torch.Tensor, states: torch.Tensor, actions: torch.Tensor, decode_frames: bool = True
    ) -> dict[str, torch.Tensor]:
        """From real context ``frames (B, H, W, 3)``, ``states (B, D)`` roll ``actions (B, L, A)`` in
        imagination. Returns ``states (B, L, D)``, ``rewards (B, L)`` and (if asked) uint8
        ``frames (B, L, H, W, 3)``; index ``i`` is the prediction after ``i + 1`` actions."""
        deter, stoch = self.initial(frames, states)
        out: dict[str, list[torch.Tensor]] = {"states": [], "rewards": [], "frames": []}
        for i in range(actions.shape[1]):
            deter, stoch, _ = self.imagine(deter, stoch, actions[:, i])
            feat = self.features(deter, stoch)
            out["states"].append(self.decode_state(feat))
            out["rewards"].append(self.reward(feat))
            if decode_frames:
                out["frames"].append(self.decode_frame(feat, frames))
        return {k: torch.stack(v, 1) for k, v in out.items() if v}
