"""Checkpoints: safetensors weights + JSON config; loading never unpickles.

A checkpoint is a folder::

    step_00000100/
        model.safetensors      the state dict (tensors only)
        optimizer.safetensors  optional: the optimizer's tensor state, keyed "state.<param>.<key>"
        trainer.safetensors    optional: the trainer's tensors (e.g. generator state)
        config.json            {"model_class", "model_config", "metadata", "optimizer", ...}

``config.json`` is written last, so a folder without it is an interrupted write and is ignored by
:func:`list_checkpoints`.

A checkpoint folder is untrusted input. ``config.json`` names the model class as ``module:Class``;
that string is looked up in :data:`MODEL_CLASSES`, an explicit registry of piami's own models
(nothing is imported by name from a file). The model is first built on PyTorch's ``meta`` device,
which allocates nothing: its size is checked against the memory limit
(:func:`piami._limits.check_memory`) and its parameter shapes against the safetensors header
before any real tensor exists. For a model of your own, pass it to :func:`load_checkpoint` as
``model=`` and only its weights are loaded (their shapes checked first, too).

Example:
    >>> import tempfile, torch
    >>> from piami.models import Transformer, TransformerConfig
    >>> m = Transformer(TransformerConfig(n_layers=1, d_model=8, d_head=4, d_mlp=8), device="cpu")
    >>> d = save_checkpoint(m, tempfile.mkdtemp() + "/step_00000000", metadata={"step": 0})
    >>> m2, meta = load_checkpoint(d)
    >>> meta["step"], bool(torch.equal(m2.W_E, m.W_E))
    (0, True)
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from piami._io import atomic_write_bytes, atomic_write_json, read_json
from piami._limits import check_memory
from piami.errors import PiamiFileError, PiamiTypeError, PiamiValueError
from piami.models.bilinear import Bilinear
from piami.models.device import resolve_device, resolve_dtype
from piami.models.transformer import Transformer

_STEP_DIR = re.compile(r"^step_(\d{8,})$")


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    """``run_dir/checkpoints/step_<8-digit step>`` for ``step``."""
    return Path(run_dir) / "checkpoints" / f"step_{int(step):08d}"


def _tensors_to_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    return st_save({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()})


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return st_load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own error types
        raise PiamiFileError(f"{path} is not a readable safetensors file ({exc})") from exc


def _class_path(model: nn.Module) -> str:
    cls = type(model)
    return f"{cls.__module__}:{cls.__qualname__}"


def _optimizer_split(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state dict -> (tensors for safetensors, JSON-ready rest)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = val
            else:
                scalars.setdefault(str(idx), {})[key] = val
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
        for g in sd["param_groups"]
    ]
    return tensors, {"param_groups": groups, "scalar_state": scalars}


def _optimizer_join(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, val in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = val
    for idx, extra in info.get("scalar_state", {}).items():
        state.setdefault(int(idx), {}).update(extra)
    groups = []
    for g in info["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    model: nn.Module,
    path_dir: str | Path,
    *,
    metadata: dict[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``model`` (and optionally the optimizer and trainer tensors) into ``path_dir``.

    Args:
        model: the module; its ``cfg`` (a dataclass), when present, is saved so that
            :func:`load_checkpoint` can rebuild it.
        path_dir: the checkpoint folder (created).
        metadata: JSON-ready facts, e.g. ``{"step": 100, "tokens_seen": ..., "loss": ...}``.
        optimizer: its state goes to ``optimizer.safetensors`` (tensors) and ``config.json``.
        extra_tensors: further tensors (e.g. a generator's state) for ``trainer.safetensors``.

    Returns:
        The checkpoint folder.
    """
    if not isinstance(model, nn.Module):
        raise PiamiTypeError(f"save_checkpoint takes an nn.Module, got {type(model).__name__}")
    path = Path(path_dir)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path / "model.safetensors", _tensors_to_bytes(model.state_dict()))
    info: dict[str, Any] = {"format": "piami-checkpoint-1", "model_class": _class_path(model)}
    cfg = getattr(model, "cfg", None)
    if dataclasses.is_dataclass(cfg):
        info["model_config"] = dataclasses.asdict(cfg)
    if optimizer is not None:
        tensors, opt_info = _optimizer_split(optimizer)
        atomic_write_bytes(path / "optimizer.safetensors", _tensors_to_bytes(tensors))
        info["optimizer"] = {"class": type(optimizer).__name__, **opt_info}
    if extra_tensors:
        atomic_write_bytes(path / "trainer.safetensors", _tensors_to_bytes(extra_tensors))
    from piami import __version__

    info["piami_version"] = __version__
    info["metadata"] = dict(metadata or {})
    atomic_write_json(path / "config.json", info)  # last: marks the checkpoint complete
    return path


def read_checkpoint_info(path_dir: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint folder (a JSON object, or a PiamiFileError)."""
    path = Path(path_dir) / "config.json"
    if not path.exists():
        raise PiamiFileError(
            f"no checkpoint at {Path(path_dir)}: expected a folder with config.json and "
            "model.safetensors written by piami.train.save_checkpoint"
        )
    info = read_json(path, what="checkpoint config.json")
    for key, kind in (("model_class", str), ("model_config", dict), ("metadata", dict)):
        if key in info and not isinstance(info[key], kind):
            raise PiamiFileError(
                f"{path}: {key} must be a JSON {kind.__name__}, got {type(info[key]).__name__}"
            )
    return info


def _class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


#: The model classes a checkpoint may name (``module:Class`` -> class), and nothing else.
MODEL_CLASSES: dict[str, type] = {_class_name(c): c for c in (Transformer, Bilinear)}


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header, without reading the tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except FileNotFoundError as exc:
        raise PiamiFileError(f"checkpoint weights {path} are missing") from exc
    except Exception as exc:  # safetensors raises its own error types on a forged header
        raise PiamiFileError(f"{path} is not a readable safetensors file ({exc})") from exc


def _check_fits(model: nn.Module, shapes: dict[str, tuple[int, ...]], where: Path) -> None:
    target = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, unexpected = sorted(set(target) - set(shapes)), sorted(set(shapes) - set(target))
    bad_shape = sorted(k for k in set(shapes) & set(target) if shapes[k] != target[k])
    if missing or unexpected or bad_shape:
        raise PiamiValueError(
            f"checkpoint {where} does not fit the model: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, shape mismatch {bad_shape[:5]}"
        )


def _build_model(
    info: dict[str, Any],
    device: torch.device,
    dtype: Any,
    shapes: dict[str, tuple[int, ...]],
    where: Path,
) -> nn.Module:
    cls_path = info.get("model_class", "")
    registry = MODEL_CLASSES
    if not isinstance(cls_path, str) or cls_path not in registry:
        raise PiamiValueError(
            f"checkpoint names model class {cls_path[:120]!r}; piami rebuilds only "
            f"{', '.join(registry)}. Build your model yourself and pass it as "
            "load_checkpoint(path, model=your_model)"
        )
    cls = registry[cls_path]
    cfg_dict = info.get("model_config")
    if cfg_dict is None:
        raise PiamiFileError(f"checkpoint of {cls_path} has no model_config; pass model=")
    cfg_cls = cls.config_class
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg_dict.items()}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise PiamiFileError(f"checkpoint config has keys {unknown} unknown to {cfg_cls.__name__}")
    try:
        cfg = cfg_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise PiamiFileError(
            f"{where}: model_config is not a valid {cfg_cls.__name__} ({exc})"
        ) from exc
    dt = resolve_dtype(dtype if dtype is not None else "float32")
    kw: dict[str, Any] = {"device": "meta", "dtype": dt}
    if "generator" in inspect.signature(cls.__init__).parameters:
        kw["generator"] = torch.Generator()
    with torch.device("meta"):  # shapes only: nothing is allocated
        skeleton = cls(cfg, **kw)
    n_bytes = sum(p.numel() for p in skeleton.state_dict().values()) * dt.itemsize
    check_memory(
        n_bytes, f"the model of checkpoint {where}", fix="it is not a checkpoint to load here"
    )
    _check_fits(skeleton, shapes, where)
    kw["device"] = device
    return cls(cfg, **kw)


def load_checkpoint(
    path_dir: str | Path,
    *,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild (or fill) a model from a checkpoint folder; never unpickles.

    Args:
        path_dir: the folder written by :func:`save_checkpoint`.
        model: load the weights into this module instead of building one from ``config.json``.
        optimizer: when given, its state is restored from ``optimizer.safetensors``.
        device: where the rebuilt model lives (``"cpu"`` by default; ``"auto"`` allowed).
        dtype: dtype of the rebuilt model (default: float32).

    Returns:
        ``(model, metadata)``.
    """
    path = Path(path_dir)
    info = read_checkpoint_info(path)
    dev = resolve_device(device)
    weights = path / "model.safetensors"
    shapes = _header_shapes(weights)  # before anything is allocated
    if model is None:
        model = _build_model(info, dev, dtype, shapes, path)
    else:
        _check_fits(model, shapes, path)
    model.load_state_dict(_read_tensors(weights))
    if optimizer is not None:
        if "optimizer" not in info:
            raise PiamiFileError(f"checkpoint {path} holds no optimizer state")
        tensors = _read_tensors(path / "optimizer.safetensors")
        optimizer.load_state_dict(_optimizer_join(tensors, info["optimizer"]))
    return model, dict(info.get("metadata", {}))


def load_trainer_tensors(path_dir: str | Path) -> dict[str, torch.Tensor]:
    """The ``trainer.safetensors`` tensors of a checkpoint (empty dict when absent)."""
    p = Path(path_dir) / "trainer.safetensors"
    return _read_tensors(p) if p.is_file() else {}


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, sorted by step: ``[(step, folder), ...]``.

    Looks in ``run_dir/checkpoints/step_<8-digit step>/``; a folder without ``config.json`` (an
    interrupted write) is skipped.
    """
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and d.is_dir() and (d / "config.json").is_file():
            out.append((int(m.group(1)), d))
    return sorted(out)


__all__ = [
    "MODEL_CLASSES",
    "checkpoint_dir",
    "list_checkpoints",
    "load_checkpoint",
    "load_trainer_tensors",
    "read_checkpoint_info",
    "save_checkpoint",
]
