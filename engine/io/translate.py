"""Inference: translate images of any size and aspect ratio, in either direction.

A model comes from a training checkpoint, a run folder (its latest checkpoint), or a
standalone model file (``.safetensors`` written by ``export``/``import-reference``).
Inputs are reflect-padded to a multiple of 4 (the generator downsamples twice) and the
output is cropped back, so the output has exactly the input's size.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from engine.config import Config
from engine.data.decode import IMAGE_EXTENSIONS, load_image
from engine.devices import memory_in_use
from engine.errors import CheckpointError, ConfigError, DataError
from engine.images import tensor_to_pil, to_unit_range
from engine.io.atomic import atomic_write_bytes
from engine.io.checkpoint_files import check_architecture, config_from_checkpoint, load_checkpoint
from engine.io.lut import TRANSLATE_SIZES, lut_for_image, translate_by_lut
from engine.io.reference import load_reference_generators
from engine.io.run_folder import RunFolder
from engine.io.tiling import DEFAULT_MEMORY, OutOfMemory, tile_for_memory, tile_memory, translate_tiled
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
    data_scale: dict[str, float] = field(default_factory=dict)  # the scale each domain's images were trained at
    last_route: str = field(default="", compare=False)  # how the last image went: whole, tiles or a LUT

    def train_scale(self, direction: str) -> float | None:
        """The scale the model learned its input domain at (1: the images' own resolution), if known."""
        return self.data_scale.get("A" if direction == "AtoB" else "B")

    def scale_note(self, direction: str) -> str:
        """A sentence for the user when translating at full resolution differs much from the training scale."""
        s = self.train_scale(direction)
        if s is None or 0.8 <= s <= 1.25:
            return ""
        finer = "finer" if s < 1 else "coarser"
        return (f"this model learned at {s:.2g}× the resolution of its training images, so at an image's full "
                f"resolution its textures come out {finer} than it learned them; translating at {s:.2g}× (--scale "
                "train, or Match training scale in the app) shows what it learned")

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

    def translate(self, img: Image.Image, direction: str = "AtoB", *, tile: int | None = None,
                  max_memory: int = DEFAULT_MEMORY, scale: float = 1.0,
                  progress: Callable[[int, int], None] | None = None) -> Image.Image:
        """Any mode in (grayscale, RGBA, palette …), RGB out, same width and height.

        Large images go through the generator in overlapping tiles (``engine.io.tiling``), sized so
        that their activations fit ``max_memory`` bytes, or ``tile`` px when given. ``scale`` < 1 first
        shrinks the image (for a model that learned at a smaller scale, see ``train_scale``) and
        enlarges the result back to the input's size. ``progress(done, total)`` follows the tiles.
        """
        net = self.generator(direction)
        rgb = img.convert("RGB")
        if scale != 1.0:
            size = (max(8, round(rgb.width * scale)), max(8, round(rgb.height * scale)))
            out = self.translate(rgb.resize(size, Image.Resampling.LANCZOS), direction, tile=tile,
                                 max_memory=max_memory, progress=progress)
            return out.resize(rgb.size, Image.Resampling.LANCZOS)
        pixels = np.asarray(rgb, dtype=np.uint8)
        # the decoded input, its tensor, the result's tensor, its array and image and the encoded file stay alive
        # beside the activations; a tenth of the rest is kept free for the allocator's own overhead
        budget = (max_memory - 6 * pixels.size) * 9 // 10
        if tile is None and budget < tile_memory(net, 64):
            raise OutOfMemory(f"the {rgb.width}×{rgb.height} image alone takes about "
                              f"{6 * pixels.size / 2**30:.1f} GiB "
                              f"in memory, which leaves too little of {max_memory / 2**30:.2f} GiB for even the "
                              "smallest tile: give a larger --max-memory")
        if getattr(net, "family", None) == "colour" and rgb.width * rgb.height >= TRANSLATE_SIZES[0] ** 3:
            table = lut_for_image(net, pixels.reshape(-1, 3))  # a per-pixel map: a checked 3D LUT, no tiles
            if table is not None:
                self.last_route = f"a checked {table.shape[-1]}³ LUT"
                return Image.fromarray(translate_by_lut(table, pixels, progress), "RGB")
        x = torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0)  # the network's way: its own tensor
        side = tile or tile_for_memory(net, budget, tuple(x.shape[-2:]))
        if side >= max(x.shape[-2:]):  # one piece: the plain whole-image pass
            device = next(net.parameters()).device
            try:
                y = translate_tensor(net, to_unit_range(x.to(device)))
            except (torch.OutOfMemoryError, MemoryError) as e:
                raise OutOfMemory(f"the {x.shape[-1]}×{x.shape[-2]} image did not fit in memory at once "
                                  f"({str(e).splitlines()[0][:80]}): give a smaller --max-memory or a --tile") from None
            self.last_route = "one piece"
            if progress is not None:
                progress(1, 1)
            return tensor_to_pil(y)
        self.last_route = f"{side}-px tiles"  # set before the tiles' progress, which may print it
        y = translate_tiled(net, x, tile=side, progress=progress)
        return Image.fromarray(y[0].permute(1, 2, 0).to(torch.uint8).numpy(), "RGB")

    # --- loading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", checkpoint: str | int = "latest"
             ) -> "TranslationModel":
        """A run folder (its ``checkpoint``: ``latest``, ``best`` or a step), a training checkpoint (.pt), a model
        file (.safetensors), or a reference .pth."""
        p = Path(path)
        if p.is_dir() and RunFolder(p).looks_like_run():
            p = RunFolder(p).checkpoint(checkpoint)
            if not p.is_file():
                what = {"best": "no best checkpoint yet (it needs the W monitor and held-out images)",
                        "latest": "no checkpoint yet"}.get(str(checkpoint),
                                                           f"no checkpoint of step {checkpoint} (kept: "
                                                           "the last few and best)")
                raise CheckpointError(f"{path} has {what}")
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
        scale = ck.get("data", {}).get("scale", {}) if isinstance(ck.get("data"), dict) else {}
        return cls(G, F, cfg, str(p), int(ck.get("step", 0)), {k: float(v) for k, v in scale.items()}).to(device)

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
        try:
            scale = {k: float(v) for k, v in json.loads(meta.get("data_scale", "{}")).items()}
        except (ValueError, AttributeError, TypeError):
            scale = {}
        return cls(nets["G"], nets["F"], cfg, str(p), step, scale)

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
        if self.data_scale:
            meta["data_scale"] = json.dumps(self.data_scale)
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


def memory_left(process_memory: int, net: torch.nn.Module) -> int:
    """What a translation may use when the whole process may hold ``process_memory`` bytes on ``net``'s device:
    the cap less what the process holds now. Too little left for even the smallest tile is OutOfMemory,
    naming what the process holds."""
    device = next(net.parameters()).device
    held = memory_in_use(device)
    left = process_memory - held
    if left < tile_memory(net, 64):
        raise OutOfMemory(f"this process already holds {held / 2**30:.2f} GiB on {device.type}, which leaves no room "
                          f"under --max-memory {process_memory / 2**30:.2f} GiB: give at least "
                          f"{math.ceil((held + tile_memory(net, 64)) / 2**30 * 10) / 10:.1f}G")
    return left


def translate_files(model: TranslationModel, inputs: Iterable[str | Path], out_dir: str | Path,
                    direction: str = "AtoB", max_pixels: int = 80_000_000, *,
                    on_image: Callable[[Path], Any] | None = None,
                    process_memory: int | None = None, **translate_kw: Any) -> tuple[list[Path], list[tuple[str, str]]]:
    """Translate each input into out_dir (PNG, same stem). Returns (written, [(path, reason) skipped]).

    ``on_image(path)`` is called before each image and may return a progress callback for its tiles;
    ``process_memory`` caps the whole process's memory while translating (the images get what the process
    does not hold before the first, see ``memory_left``); other keywords go to ``TranslationModel.translate``
    (tile, max_memory, scale)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    net = model.generator(direction)  # fail early on a missing direction
    if process_memory is not None and translate_kw.get("tile") is None:  # once: what one image frees, the next reuses
        translate_kw["max_memory"] = memory_left(process_memory, net)
    for src in iter_inputs(inputs):
        try:
            img = load_image(src, max_pixels)
        except DataError as e:
            skipped.append((str(src), str(e)))
            continue
        progress = on_image(src) if on_image is not None else None
        out = model.translate(img, direction, progress=progress, **translate_kw)
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        dst = out_dir / f"{src.stem}_{direction}.png"
        atomic_write_bytes(dst, buf.getvalue())
        written.append(dst)
    return written, skipped
