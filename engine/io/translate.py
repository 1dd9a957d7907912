"""Inference: translate images of any size and aspect ratio, in either direction.

A model comes from a training checkpoint, a run folder (its latest checkpoint), or a
standalone model file (``.safetensors`` written by ``export``/``import-reference``).
Inputs are reflect-padded to a multiple of 4 (the generator downsamples twice) and the
output is cropped back, so the output has exactly the input's size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from engine.config import Config
from engine.data.decode import IMAGE_EXTENSIONS, load_image
from engine.errors import CheckpointError, ConfigError, DataError
from engine.images import pil_to_tensor, tensor_to_pil
from engine.io.atomic import atomic_write_bytes
from engine.io.checkpoint import check_architecture, config_from_checkpoint, load_checkpoint
from engine.io.reference import load_reference_generators
from engine.models.networks import generator_from_state_dict, pad_to_multiple, translate_tensor

__all__ = ["Direction", "TranslationModel", "translate_tensor", "pad_to_multiple", "MODEL_FORMAT"]

Direction = Literal["AtoB", "BtoA"]
MODEL_FORMAT = "cyclegan-studio-model"


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
        x = pil_to_tensor(img.convert("RGB")).to(device)
        return tensor_to_pil(translate_tensor(net, x))

    # --- loading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "TranslationModel":
        """A run folder, a training checkpoint (.pt), a model file (.safetensors), or a reference .pth."""
        p = Path(path)
        if p.suffix == ".safetensors":
            return cls._load_safetensors(p).to(device)
        if p.suffix == ".pth" and p.is_file():
            return cls.from_reference(p).to(device)
        ck = load_checkpoint(p)
        cfg = config_from_checkpoint(ck, str(p))
        models = ck.get("models", {})
        if "G" not in models or "F" not in models:
            raise CheckpointError(f"{p} holds no generators")
        check_architecture(cfg, models["G"], str(p))
        # Prefer the EMA weights when the run kept them: they are what previews showed.
        G = generator_from_state_dict(models.get("G_ema", models["G"]), f"{p} (G)", cfg.model.norm)
        F = generator_from_state_dict(models.get("F_ema", models["F"]), f"{p} (F)", cfg.model.norm)
        return cls(G, F, cfg, str(p), int(ck.get("step", 0))).to(device)

    @classmethod
    def from_reference(cls, path: str | Path, other: str | Path | None = None) -> "TranslationModel":
        """Reference-implementation generator file(s): ``path`` is A→B, ``other`` (if given) B→A."""
        G, F, cfg, source = load_reference_generators(path, other)
        return cls(G, F, cfg, source, None)

    @classmethod
    def _load_safetensors(cls, p: Path) -> "TranslationModel":
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
                nets[prefix] = generator_from_state_dict(sd, f"{p} ({prefix})", norm)
        if nets["G"] is None and nets["F"] is None:
            # A bare generator state_dict (no G./F. prefixes): one direction, A→B.
            nets["G"] = generator_from_state_dict(tensors, str(p), norm)
        step = int(meta["step"]) if meta.get("step", "").isdigit() else None
        return cls(nets["G"], nets["F"], cfg, str(p), step)

    def save(self, path: str | Path, directions: Iterable[str] | None = None) -> Path:
        """Write the generators (all directions, or those named) to one .safetensors file, config as metadata."""
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
