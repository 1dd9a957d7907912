"""Inference: translate images of any size and aspect ratio, in either direction.

A model comes from a training checkpoint, a run folder (its latest checkpoint), or a
standalone model file (``.safetensors`` written by ``export``/``import-reference``).
Inputs are reflect-padded to a multiple of 4 (the generator downsamples twice) and the
output is cropped back, so the output has exactly the input's size.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import torch
import torch.nn.functional as Fn
from PIL import Image

from .checkpoint import CheckpointError, check_architecture, config_from_checkpoint, load_checkpoint
from .config import Config, ConfigError
from .data import IMAGE_EXTENSIONS, DataError, load_image
from .networks import ResnetGenerator, generator_arch_from_state_dict

__all__ = ["Direction", "TranslationModel", "translate_tensor", "pad_to_multiple", "MODEL_FORMAT"]

Direction = Literal["AtoB", "BtoA"]
MODEL_FORMAT = "cyclegan-studio-model"


def pad_to_multiple(x: torch.Tensor, m: int = 4, min_size: int = 8) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (B, C, H, W) on the bottom/right to multiples of m, at least ``min_size``.

    The generator's own reflection pads need at least 2 pixels at quarter resolution, hence
    ``min_size`` 8. Returns (padded, (H, W)) so the caller can crop back.
    """
    h, w = x.shape[-2:]
    ph, pw = max(min_size, h + (-h) % m) - h, max(min_size, w + (-w) % m) - w
    if ph or pw:
        # Reflect padding needs pad < size; tiny images fall back to replicating the edge.
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = Fn.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


@torch.no_grad()
def translate_tensor(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] → same size, through the generator."""
    padded, (h, w) = pad_to_multiple(x, 4)
    return net(padded)[..., :h, :w]


def _pil_to_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def _tensor_to_pil(t: torch.Tensor) -> Image.Image:
    arr = ((t[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def _generator_from_state(state: dict[str, torch.Tensor], what: str, norm: str = "instance") -> ResnetGenerator:
    # Older reference files carry InstanceNorm running stats that a non-tracking norm does not use.
    state = {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    try:
        arch = generator_arch_from_state_dict(state)
    except ValueError as e:
        raise CheckpointError(f"{what}: {e}") from None
    net = ResnetGenerator(arch["input_nc"], arch["output_nc"], arch["ngf"], arch["n_blocks"], norm, arch["upsample"],
                          arch["input_skip"])
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{what} does not fit a ResNet generator: {str(e).splitlines()[0][:300]}") from None
    return net.eval()


@dataclass
class TranslationModel:
    """One or two generators ready for inference. ``G``: A→B, ``F``: B→A (either may be None)."""

    G: torch.nn.Module | None
    F: torch.nn.Module | None
    config: Config | None
    source: str
    step: int | None = None

    @property
    def directions(self) -> list[str]:
        return [d for d, net in (("AtoB", self.G), ("BtoA", self.F)) if net is not None]

    def describe_directions(self) -> str:
        d = self.directions
        if d == ["AtoB"]:
            return "A→B only"
        if d == ["BtoA"]:
            return "B→A only"
        return "A→B and B→A"

    def to(self, device) -> "TranslationModel":
        for net in (self.G, self.F):
            if net is not None:
                net.to(device)
        return self

    def generator(self, direction: str) -> torch.nn.Module:
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"unknown direction {direction!r}; valid choices: AtoB, BtoA")
        net = self.G if direction == "AtoB" else self.F
        if net is None:
            raise ValueError(f"this model has no {direction} generator ({self.describe_directions()})")
        return net

    def translate(self, img: Image.Image, direction: str = "AtoB") -> Image.Image:
        """Any mode in (grayscale, RGBA, palette …), RGB out, same width and height."""
        net = self.generator(direction)
        device = next(net.parameters()).device
        x = _pil_to_tensor(img.convert("RGB")).to(device)
        return _tensor_to_pil(translate_tensor(net, x))

    # --- loading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "TranslationModel":
        """A run folder, a training checkpoint (.pt), a model file (.safetensors), or a reference .pth."""
        p = Path(path)
        if p.suffix == ".safetensors":
            return cls._load_safetensors(p).to(device)
        if p.suffix == ".pth" and p.is_file():
            from .interop import load_reference_model  # reference-implementation generators

            return load_reference_model(p).to(device)
        ck = load_checkpoint(p)
        cfg = config_from_checkpoint(ck, str(p))
        models = ck.get("models", {})
        if "G" not in models or "F" not in models:
            raise CheckpointError(f"{p} holds no generators")
        check_architecture(cfg, models["G"], str(p))
        # Prefer the EMA weights when the run kept them: they are what previews showed.
        G = _generator_from_state(models.get("G_ema", models["G"]), f"{p} (G)", cfg.model.norm)
        F = _generator_from_state(models.get("F_ema", models["F"]), f"{p} (F)", cfg.model.norm)
        return cls(G, F, cfg, str(p), int(ck.get("step", 0))).to(device)

    @classmethod
    def _load_safetensors(cls, p: Path) -> "TranslationModel":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(p))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{p} is not a readable safetensors file: {e}") from None
        cfg = None
        if "config" in meta:
            try:
                cfg = Config.from_json(meta["config"])
            except ConfigError as e:
                raise CheckpointError(f"{p} has an invalid config: {e}") from None
        norm = cfg.model.norm if cfg else "instance"
        nets: dict[str, torch.nn.Module | None] = {"G": None, "F": None}
        for prefix in nets:
            sd = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            if sd:
                nets[prefix] = _generator_from_state(sd, f"{p} ({prefix})", norm)
        if nets["G"] is None and nets["F"] is None:
            # A bare generator state_dict (no G./F. prefixes): one direction, A→B.
            nets["G"] = _generator_from_state(tensors, str(p), norm)
        step = int(meta["step"]) if meta.get("step", "").isdigit() else None
        return cls(nets["G"], nets["F"], cfg, str(p), step)

    def save(self, path: str | Path, directions: Iterable[str] | None = None) -> Path:
        """Write the generators (all directions, or those named) to one .safetensors file, config as metadata."""
        from safetensors.torch import save as st_save

        from .checkpoint import atomic_write_bytes

        wanted = list(directions) if directions is not None else self.directions
        tensors = {}
        for d in wanted:
            prefix = "G" if d == "AtoB" else "F"
            for k, v in self.generator(d).state_dict().items():
                tensors[f"{prefix}.{k}"] = v.detach().cpu().contiguous()
        meta = {"format": MODEL_FORMAT, "directions": ",".join(wanted)}
        if self.config is not None:
            meta["config"] = self.config.to_json(indent=None)
        if self.step is not None:
            meta["step"] = str(self.step)
        return atomic_write_bytes(path, st_save(tensors, metadata=meta))


def iter_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand folders (recursively) into their image files; explicit files are kept as given."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.exists():
            out.append(p)
        else:
            raise DataError(f"{p} does not exist")
    return out


def translate_files(model: TranslationModel, inputs: Iterable[str | Path], out_dir: str | Path,
                    direction: str = "AtoB", max_pixels: int = 80_000_000) -> tuple[list[Path], list[tuple[str, str]]]:
    """Translate each input into out_dir (PNG, same stem). Returns (written, [(path, reason) skipped])."""
    from .checkpoint import atomic_write_bytes
    import io

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    model.generator(direction)  # fail early on a missing direction
    for src in iter_inputs(inputs):
        try:
            img = load_image(src, max_pixels)
        except DataError as e:
            skipped.append((str(src), str(e)))
            continue
        out = model.translate(img, direction)
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        dst = out_dir / f"{src.stem}_{direction}.png"
        atomic_write_bytes(dst, buf.getvalue())
        written.append(dst)
    return written, skipped
