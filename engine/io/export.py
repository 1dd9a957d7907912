"""Model files out: one generator as safetensors, ONNX or TorchScript; reference ``.pth`` files as safetensors.

Reading the reference implementation's files is ``engine.io.reference``.
Exports take one direction of any model ``TranslationModel.load`` accepts. ONNX and
TorchScript files wrap the generator in ``PaddedGenerator``, so, like ``translate``, they take
images of any height, width and batch size (at least 8×8 px) and return the same size.
ONNX needs the optional extra ``pip install -e .[export]`` (torch's exporter runs on onnxscript).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as Fn
from torch import nn

from engine.errors import MissingExtraError
from engine.io.atomic import atomic_path, atomic_write_bytes
from engine.io.lut import apply_lut, cube_lut
from engine.io.translate import MODEL_FORMAT, TranslationModel

log = logging.getLogger(__name__)

__all__ = [
    "EXPORT_FORMATS",
    "MissingExtraError",
    "PaddedGenerator",
    "import_reference",
    "export_generator",
    "format_for",
    "describe_arch",
    "require_onnx",
    "cube_lut",
    "read_cube",
    "apply_lut",
]

EXPORT_FORMATS = ("safetensors", "onnx", "torchscript", "cube")
_SUFFIX_FORMATS = {".safetensors": "safetensors", ".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript",
                   ".torchscript": "torchscript", ".cube": "cube"}
_ONNX_INSTALL = "pip install -e .[export]  (or: pip install onnxscript onnx)"


def import_reference(path: str | os.PathLike, out: str | os.PathLike,
                     other: str | os.PathLike | None = None) -> tuple[Path, TranslationModel]:
    """Load reference generator file(s) and write them as one .safetensors model."""
    out = Path(out)
    if out.suffix == "":
        out = out.with_suffix(".safetensors")
    elif out.suffix != ".safetensors":
        raise ValueError(f"--out {out}: a model file must end in .safetensors")
    model = TranslationModel.from_reference(path, other)
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


def _metadata(model: TranslationModel, direction: str) -> dict[str, str]:
    meta = {"format": MODEL_FORMAT, "direction": direction,
            "input": "float32 RGB, (batch, 3, height, width), values in [-1, 1]; height and width at least 8",
            "output": "float32 RGB, same shape as the input, values in [-1, 1]"}
    if model.config is not None:
        meta["config"] = model.config.to_json(indent=None)
    if model.step is not None:
        meta["step"] = str(model.step)
    return meta


def require_onnx() -> None:
    try:
        # An optional extra, imported only when an ONNX export is asked for.
        import onnx  # noqa: F401, PLC0415 - torch.onnx.export(dynamo=True) needs both
        import onnxscript  # noqa: F401, PLC0415
    except ImportError as e:
        raise MissingExtraError(f"ONNX export needs the export extra ({e.name or 'onnxscript'} is missing): "
                                f"{_ONNX_INSTALL}") from None


def _export_onnx(net: nn.Module, meta: dict[str, str], out: Path) -> Path:
    require_onnx()
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
    with atomic_path(out) as tmp:
        program.save(str(tmp), external_data=False)
    return out


def _export_torchscript(net: nn.Module, meta: dict[str, str], out: Path) -> Path:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.14 marks torch.jit as deprecated; it still is what C++/mobile deployments load.
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        scripted = torch.jit.script(PaddedGenerator(net).eval())
        torch.jit.save(scripted, buf, _extra_files={"cyclegan_studio.json": json.dumps(meta)})
    return atomic_write_bytes(out, buf.getvalue())


@torch.no_grad()
def _export_cube(net: nn.Module, meta: dict[str, str], out: Path) -> Path:
    """A 3D LUT in the Adobe/Resolve .cube text format, for colour-grading tools."""
    if getattr(net, "family", None) != "colour":
        kind = getattr(net, "family", "resnet")
        raise ValueError(f"a .cube LUT holds a per-pixel colour map; this model's {meta['direction']} generator is a "
                         f"{kind} generator, whose output depends on each pixel's neighbours. Export it as "
                         "safetensors, ONNX or TorchScript, or train with the colour family (--set netG=colour)")
    lut = cube_lut(net)
    arrow = "A to B" if meta["direction"] == "AtoB" else "B to A"  # .cube files are ASCII
    lines = [f'TITLE "CycleGAN Studio colour map {arrow}"', f"# step {meta.get('step', '?')}",
             f"LUT_3D_SIZE {lut.shape[0]}", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    lines += [f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in lut.reshape(-1, 3).tolist()]
    return atomic_write_bytes(out, ("\n".join(lines) + "\n").encode("ascii"))


def read_cube(path: str | os.PathLike) -> torch.Tensor:
    """A .cube file's 3D LUT as (size, size, size, 3) in [0, 1], indexed [b, g, r] (the inverse of the export)."""
    size, rows = None, []
    for line in Path(path).read_text(encoding="ascii").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#") or parts[0] in ("TITLE", "DOMAIN_MIN", "DOMAIN_MAX"):
            continue
        if parts[0] == "LUT_3D_SIZE":
            size = int(parts[1])
        else:
            rows.append([float(v) for v in parts[:3]])
    if size is None or len(rows) != size ** 3:
        raise ValueError(f"{path} is not a 3D .cube LUT ({len(rows)} entries for size {size})")
    return torch.tensor(rows).reshape(size, size, size, 3)


def export_generator(model: TranslationModel, direction: str, fmt: str, out: str | os.PathLike) -> Path:
    """Write one direction's generator to ``out`` as safetensors, ONNX, TorchScript or (a colour map) a .cube
    LUT, atomically."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; valid choices: {', '.join(EXPORT_FORMATS)}")
    net = model.generator(direction)  # ValueError for an unknown or missing direction
    out = Path(out)
    if fmt == "safetensors":
        return model.save(out, [direction])
    if fmt == "cube":
        return _export_cube(net.eval(), _metadata(model, direction), out)
    net = copy.deepcopy(net).cpu().eval()  # exported files hold CPU tensors; the caller's model stays put
    if fmt == "onnx":
        return _export_onnx(net, _metadata(model, direction), out)
    return _export_torchscript(net, _metadata(model, direction), out)


def format_for(out: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    guessed = _SUFFIX_FORMATS.get(out.suffix.lower())
    if guessed is None:
        raise ValueError(f"cannot tell the format from {out.name!r}; pass --format "
                         f"({', '.join(EXPORT_FORMATS)}) or use .safetensors, .onnx or .pt")
    return guessed


def describe_arch(arch: Mapping[str, object]) -> str:
    if arch.get("family") == "colour":
        return f"colour generator (a per-pixel map, {arch['depth']} hidden layers of {arch['width']})"
    if arch.get("family") == "local":
        return (f"local generator (a per-pixel map of each pixel and its neighbourhood at a few scales, "
                f"{arch['depth']} hidden layers of {arch['width']})")
    skip = "input skip, " if arch.get("input_skip") else ""
    return (f"ResNet generator, {arch['n_blocks']} blocks, ngf {arch['ngf']}, {arch['upsample']} upsampling, {skip}"
            f"{arch['input_nc']}→{arch['output_nc']} channels")
