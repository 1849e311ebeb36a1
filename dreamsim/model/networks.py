"""Building blocks of the world model: frame+state encoder, frame decoder, MLP heads."""

from __future__ import annotations

import math

import torch
from torch import nn


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def mlp(inp: int, hidden: int, out: int, layers: int = 2) -> nn.Sequential:
    """``layers`` hidden layers of Linear -> LayerNorm -> SiLU, then a linear output."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(inp if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.SiLU()]
    mods.append(nn.Linear(hidden, out))
    return nn.Sequential(*mods)


def _stages(frame_size: int) -> int:
    stages = int(math.log2(frame_size // 4))
    if 4 * 2**stages != frame_size:
        raise ValueError(f"frame_size must be 4 * 2**k (e.g. 64), got {frame_size}")
    return stages


class Encoder(nn.Module):
    """Frames ``(N, 3, H, W)`` in [-0.5, 0.5] and normalised states ``(N, D)`` -> embedding ``(N, E)``.

    A CNN halves the frame each stage down to 4x4; an MLP reads the symlog-scaled state.
    """

    def __init__(self, frame_size: int, depth: int, state_dim: int, hidden: int):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i in range(_stages(frame_size)):
            out = depth * 2**i
            layers += [nn.Conv2d(channels, out, 4, 2, 1), nn.GroupNorm(1, out), nn.SiLU()]
            channels = out
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        self.state = mlp(state_dim, hidden, hidden)
        self.out_dim = channels * 16 + hidden

    def forward(self, frames: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.cnn(frames), self.state(symlog(states))], -1)


class FrameDecoder(nn.Module):
    """Latent features ``(N, F)`` -> frames ``(N, 3, H, W)`` in [-0.5, 0.5] (mean of a unit Gaussian).

    With ``reference`` on, the decoder also reads a real frame ``(N, 3, H, W)`` of the same episode
    (the one its imagination started from) and draws each pixel as a blend of that frame and its own
    drawing, weighted by a mask from the latent and a small convolution over both frames. What stayed
    still since the reference (the floor, the walls) can be copied from it exactly instead of being
    redrawn through the latent; what moved is drawn.
    """

    def __init__(self, feat_dim: int, frame_size: int, depth: int, reference: bool = False):
        super().__init__()
        stages = _stages(frame_size)
        self.channels = depth * 2 ** (stages - 1)
        self.inp = nn.Linear(feat_dim, self.channels * 16)
        layers: list[nn.Module] = []
        channels = self.channels
        for i in reversed(range(stages)):
            out = (4 if reference else 3) if i == 0 else depth * 2 ** (i - 1)  # + the mask's logit
            layers.append(nn.ConvTranspose2d(channels, out, 4, 2, 1))
            if i > 0:
                layers += [nn.GroupNorm(1, out), nn.SiLU()]
            channels = out
        self.net = nn.Sequential(*layers)
        # Reads (drawing, mask logit, reference): where the reference differs from the drawing, the
        # latent alone cannot tell whether the body left that pixel or never reached it.
        self.blend = nn.Sequential(nn.Conv2d(7, 8, 3, padding=1), nn.SiLU(), nn.Conv2d(8, 1, 1)) if reference else None

    def forward(self, feat: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        # channels-last: about 2x faster transposed convolutions on CPU (oneDNN); tensor cores like it too
        x = self.inp(feat).reshape(-1, self.channels, 4, 4).contiguous(memory_format=torch.channels_last)
        x = self.net(x)
        if self.blend is None:
            return x
        if reference is None:
            raise ValueError("this frame decoder blends with a reference frame: pass the real frame the rollout started from")
        reference = reference.to(x.dtype)
        drawn, logit = x[:, :3], x[:, 3:]
        inputs = torch.cat([drawn, logit, reference], 1).contiguous(memory_format=torch.channels_last)  # ~3x faster on CPU
        mask = torch.sigmoid(logit + self.blend(inputs))
        return reference + mask * (drawn - reference)
