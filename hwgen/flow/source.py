"""Model sources: a zoo name, ``path/file.py:ClassOrFactory``, ``path/net.onnx``, or an
nn.Module in memory; each resolves to a ``Source`` (the float model and its data).

Every check that can fail on user input happens here, before any long work: the model
file imports, the attribute exists and builds an nn.Module, the weights file loads and
matches, every weight tensor is finite (named when not), the data's shape fits the model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwgen.errors import HwgenError

from .config import BuildConfig
from .data import ArrayData, Data, DigitsData, MnistData, check_images, load_image_file

__all__ = ["Source", "resolve"]


@dataclass
class Source:
    name: str  # names the build directories and reports
    kind: str  # "zoo" | "file" | "onnx" | "module"
    in_shape: tuple[int, ...]
    data: Data
    module: Any = None  # torch nn.Module (eval mode), or None for ONNX
    onnx_path: Path | None = None
    # float logits of model inputs (N, *in_shape) -> (N, classes); None: use the IR
    float_fn: Callable[[np.ndarray], np.ndarray] | None = None
    shape_from: str = ""  # the data file the input shape was taken from, if it was


def resolve(cfg: BuildConfig) -> Source:
    if cfg.module is not None:
        return _from_module(cfg)
    spec = str(cfg.model)
    if spec.endswith(".onnx"):
        return _from_onnx(cfg, Path(spec))
    if ":" in spec or spec.endswith(".py"):
        return _from_file(cfg, spec)
    return _from_zoo(cfg, spec)


# -- data --------------------------------------------------------------------------------


def _user_data(cfg: BuildConfig, what: str) -> Data | None:
    if cfg.calib_data is not None:
        return check_images(cfg.calib_data, cfg.labels, "calib")
    if cfg.calib is not None:
        return load_image_file(cfg.calib)
    return None


def _fit_shape(data: Data, in_shape: tuple[int, ...] | None, where: str) -> tuple[int, ...]:
    """The model's (C, H, W): from the model when it says, else from the data; they must agree."""
    if isinstance(data, ArrayData):
        got = tuple(int(d) for d in data.images.shape[1:])
        got = (1, *got) if len(got) == 2 else got
        if in_shape is not None and tuple(in_shape) != got:
            raise HwgenError(
                f"{data.desc}: images are {list(got)} (C,H,W) but {where} takes {list(in_shape)}"
            )
        return got
    if in_shape is None:
        raise HwgenError(f"{where}: input shape unknown (give --calib images)")
    return tuple(in_shape)


# -- torch modules -----------------------------------------------------------------------


def _check_finite(module: Any, where: str) -> None:
    """Name the first parameter/buffer holding NaN or inf (it would poison every scale)."""
    import torch

    for key, t in module.state_dict().items():
        if torch.is_floating_point(t) and not bool(torch.isfinite(t).all()):
            raise HwgenError(f"{where}: tensor {key!r} holds NaN or infinite values")


def _load_weights(module: Any, path: Path, model: str) -> None:
    import torch

    if not path.is_file():
        raise HwgenError(f"{path}: weights file not found")
    try:
        # weights_only: a state_dict needs no pickled code, so never execute any.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise HwgenError(
            f"{path}: not a readable PyTorch weights file ({type(e).__name__}: {first})"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise HwgenError(f"{path}: not a state_dict (a dict of tensors)")
    for key, t in state.items():
        if torch.is_floating_point(t) and not bool(torch.isfinite(t).all()):
            raise HwgenError(f"{path}: tensor {key!r} holds NaN or infinite values")
    try:
        result = module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        msg = " ".join(str(e).split())
        raise HwgenError(f"{path}: does not fit {model}: {msg}") from None
    del result


def _zoo_data(dataset: str) -> Data:
    return DigitsData() if dataset == "digits" else MnistData()


def _from_zoo(cfg: BuildConfig, name: str) -> Source:
    from hwgen import zoo

    zoo.input_shape(name)  # UnknownModelError (a HwgenError) names the known models
    module = zoo.get_model(name, pretrained=False)
    weights = cfg.weights or zoo.weights_path(name)
    _load_weights(module, weights, name)
    module.eval()
    data = _user_data(cfg, name) or _zoo_data(zoo.dataset(name))
    in_shape = _fit_shape(data, zoo.input_shape(name), f"model {name}")
    return _torch_source(name, "zoo", module, in_shape, data)


def _torch_source(name: str, kind: str, module: Any, in_shape, data: Data) -> Source:
    import torch

    def float_fn(x: np.ndarray, batch: int = 1000) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch):
                out.append(module(torch.from_numpy(x[i : i + batch])).numpy())
        return np.concatenate(out)

    return Source(name, kind, tuple(in_shape), data, module=module, float_fn=float_fn)


def _import_file(path: Path) -> Any:
    """Import a user's model file as a private module (files outside the repo are fine)."""
    if not path.is_file():
        raise HwgenError(f"{path}: model file not found")
    tag = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    mod_name = f"hwgen_user_{path.stem}_{tag}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise HwgenError(f"{path}: not an importable Python file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # noqa: BLE001 - the user's code may raise anything
        del sys.modules[mod_name]
        raise HwgenError(f"{path}: importing it failed ({type(e).__name__}: {e})") from None
    return mod


def _from_file(cfg: BuildConfig, spec: str) -> Source:
    from torch import nn

    file, _, attr = spec.rpartition(":") if ":" in spec else (spec, "", "")
    path = Path(file)
    if not attr:
        raise HwgenError(f"model {spec}: name the class or factory, as {file}:ClassOrFactory")
    if path.suffix != ".py":
        raise HwgenError(f"model {spec}: {file} is not a .py file (or a zoo name, or .onnx)")
    mod = _import_file(path)
    if not hasattr(mod, attr):
        found = sorted(k for k, v in vars(mod).items() if callable(v) and not k.startswith("_"))
        raise HwgenError(f"{path}: no attribute {attr!r} (callables: {', '.join(found)})")
    try:
        module = getattr(mod, attr)()
    except Exception as e:  # noqa: BLE001
        raise HwgenError(f"{path}:{attr}(): failed ({type(e).__name__}: {e})") from None
    if not isinstance(module, nn.Module):
        raise HwgenError(f"{path}:{attr}() returned {type(module).__name__}, not a torch nn.Module")
    name = f"{path.stem}_{attr}".lower()
    if cfg.weights is not None:
        _load_weights(module, cfg.weights, name)
    else:
        _check_finite(module, f"{path}:{attr}")
    module.eval()
    data = _user_data(cfg, name)
    if data is None:
        shape = getattr(module, "in_shape", None)
        if shape is None or tuple(shape) != (1, 28, 28):
            raise HwgenError(f"model {spec}: --calib FILE is required (images the model takes)")
        data = MnistData()
    declared = getattr(module, "in_shape", None)
    in_shape = _fit_shape(data, declared, f"model {spec}")
    src = _torch_source(name, "file", module, in_shape, data)
    src.shape_from = "" if declared is not None else data.desc
    return src


def _from_module(cfg: BuildConfig) -> Source:
    from torch import nn

    module = cfg.module
    if not isinstance(module, nn.Module):
        raise HwgenError(f"module: {type(module).__name__} is not a torch nn.Module")
    name = cfg.name or type(module).__name__.lower()
    _check_finite(module, f"module {name}")
    module.eval()
    data = _user_data(cfg, name)
    if data is None:
        raise HwgenError("calib: hwgen.compile needs calibration images (calib=...)")
    declared = cfg.in_shape or getattr(module, "in_shape", None)
    in_shape = _fit_shape(data, declared, name)
    src = _torch_source(name, "module", module, in_shape, data)
    src.shape_from = "" if declared is not None else data.desc
    return src


def _from_onnx(cfg: BuildConfig, path: Path) -> Source:
    if not path.is_file():
        raise HwgenError(f"{path}: ONNX file not found")
    if cfg.weights is not None:
        raise HwgenError(f"--weights: an ONNX file carries its own weights ({path})")
    data = _user_data(cfg, path.stem)
    return Source(
        name=path.stem.lower(),
        kind="onnx",
        in_shape=(),  # set by the import step from the ONNX graph
        data=data if data is not None else MnistData(),
        onnx_path=path,
    )
