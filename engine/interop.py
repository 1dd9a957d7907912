"""Interoperability: the reference implementation's published generators in; ONNX, TorchScript and safetensors out.

The reference PyTorch CycleGAN publishes each generator as a plain ``state_dict`` written
with ``torch.save`` (``latest_net_G.pth``, or ``latest_net_G_A.pth`` / ``latest_net_G_B.pth``).
``engine.networks.ResnetGenerator`` has that layout index for index, so importing is: load
the file weights-only, read the architecture off its keys and shapes, ``load_state_dict``.
A file whose pickle would build objects or run code is refused before anything runs.

Exports take one direction of any model ``TranslationModel.load`` accepts. ONNX and
TorchScript files wrap the generator in ``PaddedGenerator``, so, like ``translate``, they take
images of any height, width and batch size (at least 8×8 px) and return the same size.
ONNX needs the optional extra ``pip install -e .[export]`` (torch's exporter runs on onnxscript).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as Fn
from torch import nn

from .checkpoint import CheckpointError, atomic_write_bytes, new_file_mode, torch_load_weights_only
from .config import Config, ConfigError, preset
from .networks import generator_arch_from_state_dict
from .translate import MODEL_FORMAT, TranslationModel, _generator_from_state

log = logging.getLogger(__name__)

__all__ = [
    "EXPORT_FORMATS",
    "MissingExtraError",
    "PaddedGenerator",
    "read_reference_state_dict",
    "load_reference_model",
    "import_reference",
    "export_generator",
    "add_cli",
]

EXPORT_FORMATS = ("safetensors", "onnx", "torchscript")
_SUFFIX_FORMATS = {".safetensors": "safetensors", ".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript",
                   ".torchscript": "torchscript"}
# Keys a training script may wrap a state_dict under, most specific first.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "netG", "G", "generator", "model", "params")
_ONNX_INSTALL = "pip install -e .[export]  (or: pip install onnxscript onnx)"


class MissingExtraError(ImportError):
    """An optional dependency is not installed. The message is one line that says what to install."""


# --- import: the reference implementation's .pth files ------------------------------------------
def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                          for k, v in obj.items())


def _unwrap_state_dict(obj: Any, what: str) -> dict[str, torch.Tensor]:
    """A plain state_dict, or one wrapped one level deep ({"state_dict": …} and the like)."""
    if _is_tensor_dict(obj):
        sd = dict(obj)
    elif isinstance(obj, Mapping):
        inner = [obj[k] for k in _WRAPPER_KEYS if k in obj and _is_tensor_dict(obj[k])]
        if not inner:
            # Any one nested dict of tensors will do, as long as there is exactly one.
            inner = [v for v in obj.values() if _is_tensor_dict(v)]
            if len(inner) != 1:
                raise CheckpointError(f"{what} holds no generator state_dict (top-level keys: "
                                      f"{', '.join(map(str, list(obj)[:8]))})")
        sd = dict(inner[0])
    else:
        raise CheckpointError(f"{what} holds a {type(obj).__name__}, not a generator state_dict")
    # Saved from a DataParallel wrapper without unwrapping it first.
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def read_reference_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a reference ``.pth`` weights-only: tensors and plain containers only, never code."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    obj = torch_load_weights_only(p, kind="PyTorch file")
    return _unwrap_state_dict(obj, str(p))


def _explain_non_generator(sd: Mapping[str, torch.Tensor], what: str) -> None:
    """Name the common wrong file (a discriminator) before the generic 'not a generator' message."""
    first = sd.get("model.0.weight")
    if "model.1.weight" not in sd and first is not None and first.ndim == 4 and tuple(first.shape[2:]) == (4, 4):
        raise CheckpointError(f"{what} looks like a PatchGAN discriminator (latest_net_D*.pth); "
                              "import the generator files (latest_net_G*.pth) instead")


def _reference_generator(path: str | os.PathLike) -> tuple[nn.Module, dict[str, int | str]]:
    sd = read_reference_state_dict(path)
    _explain_non_generator(sd, str(path))
    net = _generator_from_state(sd, str(path))  # drops stray InstanceNorm running stats, names mismatches
    arch = generator_arch_from_state_dict(net.state_dict())
    return net, arch


def _config_for(arch: Mapping[str, int | str]) -> Config | None:
    """The paper's recipe with the file's architecture, so a saved model describes itself."""
    if arch["input_nc"] != 3 or arch["output_nc"] != 3:
        return None  # the config tree assumes RGB in and out
    try:
        return preset("paper").with_values(ngf=arch["ngf"], n_blocks=arch["n_blocks"], upsample=arch["upsample"],
                                            input_skip=arch["input_skip"])
    except ConfigError as e:
        log.warning("imported generator does not fit a config (%s); saving it without one", e)
        return None


def load_reference_model(path: str | os.PathLike, other: str | os.PathLike | None = None) -> TranslationModel:
    """Reference generators as a TranslationModel: ``path`` becomes A→B (G), ``other`` (if given) B→A (F)."""
    G, arch = _reference_generator(path)
    F, arch_f = _reference_generator(other) if other is not None else (None, arch)
    cfg = _config_for(arch) if arch_f == arch else None
    if arch_f != arch:
        log.warning("the two generators differ in architecture (%s vs %s); the model is saved without a config",
                    arch, arch_f)
    source = str(path) if other is None else f"{path} + {other}"
    return TranslationModel(G, F, cfg, source, None)


def import_reference(path: str | os.PathLike, out: str | os.PathLike,
                     other: str | os.PathLike | None = None) -> tuple[Path, TranslationModel]:
    """Load reference generator file(s) and write them as one .safetensors model."""
    out = Path(out)
    if out.suffix == "":
        out = out.with_suffix(".safetensors")
    elif out.suffix != ".safetensors":
        raise ValueError(f"--out {out}: a model file must end in .safetensors")
    model = load_reference_model(path, other)
    return model.save(out), model


# --- export ------------------------------------------------------------------------------------
class PaddedGenerator(nn.Module):
    """A generator that takes any H, W: reflect-pads to multiples of 4, crops the output back.

    Written without data-dependent branches (a zero-width pad is a no-op) so that the ONNX
    exporter keeps height and width symbolic and TorchScript can script it.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        # (B, 3, H, W) → (B, 3, ⌈H/4⌉·4, ⌈W/4⌉·4): the generator downsamples twice.
        y = self.net(Fn.pad(x, (0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4), mode="reflect"))
        return y[:, :, :h, :w]


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path in the target's folder, moved over the target only when the block succeeds."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise CheckpointError(f"could not write {path}: {e.strerror or e}") from e
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except OSError as e:
        raise CheckpointError(f"could not write {path}: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _metadata(model: TranslationModel, direction: str) -> dict[str, str]:
    meta = {"format": MODEL_FORMAT, "direction": direction,
            "input": "float32 RGB, (batch, 3, height, width), values in [-1, 1]; height and width at least 8",
            "output": "float32 RGB, same shape as the input, values in [-1, 1]"}
    if model.config is not None:
        meta["config"] = model.config.to_json(indent=None)
    if model.step is not None:
        meta["step"] = str(model.step)
    return meta


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401 - torch.onnx.export(dynamo=True) needs both
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise MissingExtraError(f"ONNX export needs the export extra ({e.name or 'onnxscript'} is missing): "
                                f"{_ONNX_INSTALL}") from None


def _export_onnx(net: nn.Module, meta: dict[str, str], out: Path) -> Path:
    _require_onnx()
    Dim = torch.export.Dim
    example = torch.zeros(1, 3, 64, 64)
    # The torch.export-based exporter (the default since torch 2.9; the TorchScript one is deprecated).
    program = torch.onnx.export(
        PaddedGenerator(net).eval(), (example,), dynamo=True, verbose=False, external_data=False,
        input_names=["input"], output_names=["output"],
        dynamic_shapes=({0: Dim("batch", min=1, max=4096), 2: Dim("height", min=8), 3: Dim("width", min=8)},),
    )
    for k, v in meta.items():
        program.model.metadata_props[f"cyclegan_studio.{k}"] = v
    program.model.doc_string = f"CycleGAN Studio generator ({meta['direction']}). Input: {meta['input']}."
    with _atomic_path(out) as tmp:
        program.save(str(tmp), external_data=False)
    return out


def _export_torchscript(net: nn.Module, meta: dict[str, str], out: Path) -> Path:
    import json

    buf = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.14 marks torch.jit as deprecated; it still is what C++/mobile deployments load.
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        scripted = torch.jit.script(PaddedGenerator(net).eval())
        torch.jit.save(scripted, buf, _extra_files={"cyclegan_studio.json": json.dumps(meta)})
    return atomic_write_bytes(out, buf.getvalue())


def export_generator(model: TranslationModel, direction: str, fmt: str, out: str | os.PathLike) -> Path:
    """Write one direction's generator to ``out`` as safetensors, ONNX or TorchScript, atomically."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; valid choices: {', '.join(EXPORT_FORMATS)}")
    net = model.generator(direction)  # ValueError for an unknown or missing direction
    out = Path(out)
    if fmt == "safetensors":
        return model.save(out, [direction])
    net = copy.deepcopy(net).cpu().eval()  # exported files hold CPU tensors; the caller's model stays put
    if fmt == "onnx":
        return _export_onnx(net, _metadata(model, direction), out)
    return _export_torchscript(net, _metadata(model, direction), out)


def _format_for(out: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    guessed = _SUFFIX_FORMATS.get(out.suffix.lower())
    if guessed is None:
        raise ValueError(f"cannot tell the format from {out.name!r}; pass --format "
                         f"({', '.join(EXPORT_FORMATS)}) or use .safetensors, .onnx or .pt")
    return guessed


def _describe(arch: Mapping[str, int | str]) -> str:
    skip = "input skip, " if arch.get("input_skip") else ""
    return (f"ResNet generator, {arch['n_blocks']} blocks, ngf {arch['ngf']}, {arch['upsample']} upsampling, {skip}"
            f"{arch['input_nc']}→{arch['output_nc']} channels")


# --- CLI ---------------------------------------------------------------------------------------
def cmd_import_reference(args: argparse.Namespace) -> int:
    path, model = import_reference(args.file, args.out, args.other)
    arch = generator_arch_from_state_dict(model.G.state_dict())
    print(f"wrote {path}: {model.describe_directions()}, {_describe(arch)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    fmt = _format_for(out, args.format)
    try:
        if fmt == "onnx":
            _require_onnx()  # before loading a large model
        model = TranslationModel.load(args.model)
        path = export_generator(model, args.direction, fmt, out)
    except MissingExtraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size_mb = path.stat().st_size / 1e6
    print(f"wrote {path}: {args.direction} generator as {fmt} ({size_mb:.1f} MB)")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "import-reference", help="convert the reference implementation's latest_net_G*.pth into a model file")
    p.add_argument("file", metavar="FILE.pth", help="a generator state_dict; it becomes the A→B direction")
    p.add_argument("--other", metavar="FILE_B.pth", help="the B→A generator (e.g. latest_net_G_B.pth)")
    p.add_argument("--out", required=True, metavar="MODEL.safetensors")
    p.set_defaults(func=cmd_import_reference)

    p = subparsers.add_parser("export", help="write one generator as safetensors, ONNX or TorchScript")
    p.add_argument("model", metavar="MODEL", help="a run folder, checkpoint, .safetensors model or reference .pth")
    p.add_argument("--format", choices=EXPORT_FORMATS, help="default: from the --out suffix (.safetensors, .onnx, .pt)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB")
    p.add_argument("--out", required=True, metavar="FILE")
    p.set_defaults(func=cmd_export)
