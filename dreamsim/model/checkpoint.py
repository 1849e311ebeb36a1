"""Checkpoint folders: safetensors weights + JSON config (with a format version), never pickle.

    model.safetensors       weights and normalisation buffers
    config.json             format, format_version, task, preset, model config, training record
    start_states.npz        real start observations (obs, frames, qpos, qvel) for ``reset()``
    optimizer.safetensors   optimizer tensors (training checkpoints only, for ``--resume``)
    trainer.json            optimizer hyper-parameters and trainer progress (idem)

A folder is written beside its destination and renamed into place, so a reader never sees half.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dreamsim.files import NPZ_ERRORS, read_json, write_json
from dreamsim.model.config import ModelConfig
from dreamsim.model.world_model import WorldModel
from dreamsim.resources import assets_dir
from dreamsim.tasks import Task

if TYPE_CHECKING:
    from dreamsim.data.store import Episode

FORMAT = "dreamsim-checkpoint"
FORMAT_VERSION = 1
START_FIELDS = ("obs", "frames", "qpos", "qvel")


@dataclass
class Checkpoint:
    model: WorldModel
    task: str
    config: dict[str, Any]
    start_states: dict[str, np.ndarray]
    path: Path


def save_checkpoint(
    path: str | Path,
    model: WorldModel,
    task: str,
    start_states: dict[str, np.ndarray],
    info: dict[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    trainer_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (replacing any previous one at ``path``)."""
    path = Path(path)
    missing = [k for k in START_FIELDS if k not in start_states]
    if missing:
        raise ValueError(f"start_states lacks {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    _restore_interrupted(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    old = _previous(path)
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "task": task,
            "model": model.cfg.to_dict(),
            **(info or {}),
        }
        write_json(tmp / "config.json", config)
        np.savez_compressed(tmp / "start_states.npz", **{k: start_states[k] for k in START_FIELDS})  # type: ignore[arg-type]
        if optimizer is not None:
            tensors, groups = _optimizer_to_tensors(optimizer)
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            write_json(tmp / "trainer.json", {"param_groups": groups, **(trainer_state or {})})
        for file in tmp.iterdir():  # mkdtemp (and safetensors) keep files to their owner; checkpoints are for sharing
            file.chmod(0o644)
        tmp.chmod(0o755)
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if not path.exists() and old.exists():
            old.rename(path)  # the previous checkpoint stays in place
        raise
    return path


def _previous(path: Path) -> Path:
    """Where ``save_checkpoint`` keeps the previous checkpoint while it swaps in the new one."""
    return path.with_name(f".{path.name}.old")


def _restore_interrupted(path: Path) -> None:
    """A process killed between the two renames of ``save_checkpoint`` left only the previous
    checkpoint, set aside: put it back."""
    if not path.exists() and _previous(path).is_dir():
        _previous(path).rename(path)


def holds_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` holds a checkpoint (one set aside by an interrupted save counts, and is put back)."""
    path = Path(path)
    _restore_interrupted(path)
    return (path / "config.json").is_file()


def has_training_state(path: str | Path) -> bool:
    """Whether ``path`` holds a checkpoint that training can resume (with its optimizer state)."""
    path = Path(path)
    _restore_interrupted(path)
    return (path / "trainer.json").is_file()


def provenance(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a checkpoint's ``config.json`` that says how it was made: its preset, training,
    decoder tuning and start checkpoint (everything but the format and the model's shape)."""
    return {k: v for k, v in config.items() if k not in ("format", "format_version", "task", "model")}


def weights_sha256(path: str | Path) -> str:
    """The SHA-256 of a checkpoint's weights: which model a result was measured on, still telling
    after the folder's weights have been replaced by a newer model's."""
    return hashlib.sha256((Path(path) / "model.safetensors").read_bytes()).hexdigest()


def read_config(path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config.json``, checked for format and version."""
    path = Path(path)
    _restore_interrupted(path)
    file = path / "config.json"
    if not file.is_file():
        if (path / "checkpoint" / "config.json").is_file():  # a run folder, as `dreamsim train --out` writes
            raise FileNotFoundError(f"{path} is a run folder, not a checkpoint: did you mean {path / 'checkpoint'}?")
        where = "" if path.is_absolute() else f", relative to {Path.cwd()}"
        raise FileNotFoundError(
            f"no checkpoint at {path} (config.json missing{where}): pass the folder that holds "
            f"model.safetensors and config.json (the shipped ones are in {assets_dir()}), "
            "or train one with `dreamsim train <task>`"
        )
    config = read_json(file, "re-export or retrain the checkpoint")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{file} is not a DreamSim checkpoint config (format != {FORMAT!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {path} has format_version {config.get('format_version')}, this DreamSim reads "
            f"{FORMAT_VERSION}: use the matching DreamSim version or retrain"
        )
    if not isinstance(config.get("task"), str):
        raise ValueError(f"checkpoint config {file} names no task (its 'task' key): re-export or retrain the checkpoint")
    return config


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", task: str | None = None) -> Checkpoint:
    """Load a checkpoint folder. Raises ``ValueError`` naming what is wrong with a bad folder."""
    path = Path(path)
    config = read_config(path)
    if task is not None and config.get("task") != task:
        raise ValueError(f"checkpoint {path} was trained for task {config.get('task')!r}, not {task!r}")
    try:
        cfg = ModelConfig.from_dict(config["model"])
    except (KeyError, TypeError, ValueError) as err:  # missing or unknown keys, sizes no model can have
        raise ValueError(f"checkpoint config {path / 'config.json'} has no valid 'model' section ({err})") from err
    model = WorldModel(cfg)
    try:
        weights = load_file(str(path / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"checkpoint weights {path / 'model.safetensors'} are corrupted or missing ({err})") from err
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0:3]
        raise ValueError(
            f"checkpoint weights in {path} do not match its config ({' '.join(first)}); the files come from different models"
        ) from err
    try:
        with np.load(path / "start_states.npz") as data:
            start_states = {k: data[k] for k in START_FIELDS}
    except NPZ_ERRORS as err:
        raise ValueError(f"checkpoint start states {path / 'start_states.npz'} are corrupted or missing ({err})") from err
    if start_states["obs"].shape[1:] != (cfg.state_dim,):
        raise ValueError(f"start states in {path} have obs shape {start_states['obs'].shape}, model expects D={cfg.state_dim}")
    model.to(device).eval()
    return Checkpoint(model=model, task=str(config["task"]), config=config, start_states=start_states, path=path)


def load_for_task(task: Task, checkpoint: str | Path | None, device: torch.device) -> Checkpoint:
    """Load ``checkpoint`` (or the task's shipped one in ``assets/<task>``), checking its task."""
    path = Path(checkpoint) if checkpoint is not None else assets_dir() / task.name
    if checkpoint is None and not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no shipped checkpoint for task {task.name!r} (looked in {path}): train one with "
            f"`dreamsim collect {task.name}` and `dreamsim train {task.name}`, then pass "
            f"runs/{task.name}/checkpoint (--checkpoint on the command line, validate's first argument, "
            f"checkpoint= in Python)"
        )
    return load_checkpoint(path, device, task=task.name)


def check_fit(cfg: ModelConfig, episode: Episode, episodes: str | Path, checkpoint: str | Path, task: str) -> None:
    """Refuse episodes whose state, action or frame sizes differ from the model's (another task's)."""
    sizes = episode.sizes
    expected = (cfg.state_dim, cfg.action_dim, cfg.frame_size)
    if sizes != expected:
        raise ValueError(
            f"episodes in {episodes} have state, action and frame sizes {sizes}, the model in {checkpoint} "
            f"{expected}: collect them for {task}"
        )


def load_optimizer(path: str | Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore optimizer state saved with the checkpoint; returns the trainer state stored beside it."""
    path = Path(path)
    if not (path / "optimizer.safetensors").is_file():
        raise FileNotFoundError(f"{path} holds no optimizer state: it is not a training checkpoint")
    try:
        state = json.loads((path / "trainer.json").read_text())
        tensors = load_file(str(path / "optimizer.safetensors"))
        missing = {"param_groups", "step", "wall_time_s", "sampler_rng"} - set(state)
        if missing:
            raise ValueError(f"trainer.json lacks {sorted(missing)}")
    except (OSError, ValueError, SafetensorError) as err:
        raise ValueError(f"optimizer state in {path} is corrupted ({err}); resume from another checkpoint") from err
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state.pop("param_groups")})
    return state


def _optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    sd = optimizer.state_dict()
    tensors = {}
    for index, values in sd["state"].items():
        for name, value in values.items():
            tensors[f"{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors, sd["param_groups"]
