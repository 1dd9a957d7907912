"""What the Translate tab accepts: image files to translate, and a model file or run folder to use.

Qt-free: a drag event is read through its ``mimeData()`` only.
"""

from __future__ import annotations

from pathlib import Path

from engine.io.run_folder import RUN_FILES, RunFolder

__all__ = ["IMAGE_SUFFIXES", "MODEL_SUFFIXES", "MODEL_FILTERS", "IMAGE_FILTER", "image_paths_of", "model_path",
           "model_path_of"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MODEL_SUFFIXES = {".pt", ".pth", ".safetensors"}
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ")"
MODEL_FILTERS = ";;".join((
    "Models and runs (*.pt *.pth *.safetensors config.json)",
    "Training checkpoints (*.pt)",
    "Reference-implementation generators (*.pth)",
    "Model files (*.safetensors)",
    "Run folders: pick the run's config.json (config.json)",
    "All files (*)",
))


def _local_paths(event) -> list[Path]:
    md = event.mimeData()
    if not md.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in md.urls() if u.isLocalFile()]


def image_paths_of(event) -> list[str]:
    """Local image files among a drag's URLs."""
    return [str(p) for p in _local_paths(event) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]


def model_path(path: str | Path) -> str | None:
    """What to load for a chosen or dropped path: a model file, or a run folder (also via its config.json)."""
    p = Path(path)
    if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES:
        return str(p)
    if p.is_file() and p.name in RUN_FILES:  # a file dialog cannot pick a folder and files at once
        return str(p.parent)
    if p.is_dir() and RunFolder(p).looks_like_run():
        return str(p)
    return None


def model_path_of(event) -> str | None:
    """The first model file or run folder among a drag's URLs."""
    for p in _local_paths(event):
        found = model_path(p)
        if found is not None:
            return found
    return None
