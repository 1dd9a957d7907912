"""engine.data: robust decoding, folder scanning, the cache, deterministic unpaired batches."""

from __future__ import annotations

import io
import os
import shutil
import struct
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from engine.config import Config
from engine.data import (
    DataError,
    DataGoneError,
    ImageFolder,
    Skipped,
    UnpairedBatches,
    load_image,
    open_domain,
    open_domains,
    same_folder,
)
from engine.data import decode as data
from engine.images import to_uint8_image

# --- fixtures written on the fly ----------------------------------------------------------------

def save(path: Path, arr: np.ndarray, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, fmt, **kw)
    return path


def solid(colour, size=(8, 8)) -> np.ndarray:
    """A (h, w, 3) uint8 image of one colour; size is (w, h) like PIL."""
    return np.broadcast_to(np.array(colour, np.uint8), (size[1], size[0], 3)).copy()


def noise(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def folder_of_colours(path: Path, n: int, size: int = 8) -> Path:
    """n PNGs, image k a solid colour that encodes k, so a crop tells which image it came from."""
    for k in range(n):
        save(path / f"c{k:02d}.png", solid((10 * k, 255 - 10 * k, 100), (size, size)))
    return path


def colour_index(crop: torch.Tensor) -> int:
    """Inverse of folder_of_colours for a crop in [-1, 1]."""
    r = int(to_uint8_image(crop)[0, 0, 0])
    assert r % 10 == 0
    return r // 10


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG signature and IHDR claiming width × height (8-bit RGB), then IEND: no pixel data at all."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def jpeg_bytes(arr: np.ndarray, **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "JPEG", **kw)
    return b.getvalue()


def probe(path: Path) -> tuple[str, dict, int]:
    """(mode, info, frames) of a file as PIL sees it: proves a fixture is what the test says it is."""
    with Image.open(path) as im:
        return im.mode, dict(im.info), getattr(im, "n_frames", 1)


def cfg(**kw) -> Config:
    base = dict(load_size=16, crop_size=16, batch_size=1, val_fraction=0.0, val_min=0, cache_mb=16, n_layers_D=1)
    base.update(kw)
    return Config().with_values(base)


# --- load_image: every failure is a specific reason ---------------------------------------------

@pytest.mark.parametrize("name, write, reason", [
    ("cut.jpg", lambda p: p.write_bytes(jpeg_bytes(noise(64))[:1500]), "truncated JPEG"),
    ("zero.png", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    ("notes.png", lambda p: p.write_text("these are my holiday notes, not a picture\n"),
     "not an image (cannot identify image file)"),
])
def test_broken_files_fail_with_a_specific_reason(tmp_path, name, write, reason):
    p = tmp_path / name
    write(p)
    with pytest.raises(DataError) as e:
        load_image(p)
    assert str(e.value) == f"{p}: {reason}"


def test_broken_files_are_skipped_by_the_scan_not_fatal(tmp_path):
    root = tmp_path / "A"
    save(root / "good.png", solid((1, 2, 3)))
    (root / "cut.jpg").write_bytes(jpeg_bytes(noise(64))[:1500])
    (root / "zero.png").write_bytes(b"")
    (root / "notes.png").write_text("not a picture")
    (root / "readme.txt").write_text("ignored: not an image extension")
    ds = ImageFolder(root, load_size=8)
    assert len(ds) == 1 and ds.files == [str(root / "good.png")]
    assert sorted(ds.skipped, key=lambda s: s.path) == [
        Skipped(str(root / "cut.jpg"), "truncated JPEG"),
        Skipped(str(root / "notes.png"), "not an image (cannot identify image file)"),
        Skipped(str(root / "zero.png"), "empty file (0 bytes)"),
    ]


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 32896, 65535]], np.uint16)  # 32896 = 128·257
    p = tmp_path / "deep.png"
    Image.fromarray(values).save(p)
    assert probe(p)[0].startswith("I")  # the file really is 16-bit
    out = np.asarray(load_image(p))
    assert out.shape == (1, 4, 3)
    assert out[0, :, 0].tolist() == [0, 4, 128, 255]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_32_bit_and_float_grey(tmp_path):
    p = tmp_path / "f.tif"
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F").save(p)
    assert np.asarray(load_image(p))[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    p = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(p, quality=95)  # no cyan and black: red ink
    assert probe(p)[0] == "CMYK"
    img = load_image(p)
    assert img.mode == "RGB"
    r, g, b = np.asarray(img)[8, 8].astype(int)
    assert r > 240 and g < 15 and b < 15


def test_palette_png_with_transparency_is_composited_over_white(tmp_path):
    im = Image.new("P", (4, 2))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putdata([0, 0, 1, 1] * 2)  # left half: index 0 (red, transparent); right half: index 1 (blue)
    p = tmp_path / "pal.png"
    im.save(p, transparency=0)
    assert "transparency" in probe(p)[1]
    out = np.asarray(load_image(p))
    assert out[:, :2].reshape(-1, 3).tolist() == [[255, 255, 255]] * 4
    assert out[:, 2:].reshape(-1, 3).tolist() == [[0, 0, 255]] * 4


def test_rgba_webp(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :2] = (0, 200, 0, 255)   # opaque green
    rgba[:, 2:] = (0, 0, 0, 0)       # fully transparent
    p = tmp_path / "alpha.webp"
    Image.fromarray(rgba, "RGBA").save(p, lossless=True)
    assert probe(p)[0] == "RGBA"
    out = np.asarray(load_image(p))
    assert out[:, :2].reshape(-1, 3).tolist() == [[0, 200, 0]] * 8
    assert out[:, 2:].reshape(-1, 3).tolist() == [[255, 255, 255]] * 8


def test_animated_gif_gives_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert probe(p)[2] == 3
    out = np.asarray(load_image(p))
    assert out.shape == (8, 8, 3) and (out == (255, 0, 0)).all()


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    stored = solid((128, 128, 128), (40, 20))  # 40 wide, 20 high as stored
    stored[:8, :8] = (255, 0, 0)                # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: the viewer rotates 90° clockwise
    p = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(p, quality=95, exif=exif.tobytes())
    img = load_image(p)
    assert img.size == (20, 40)  # upright: portrait
    out = np.asarray(img).astype(int)
    assert out[3, 16].tolist() == pytest.approx([255, 0, 0], abs=30)  # the stored top-left is now top-right
    assert out[3, 3].tolist() == pytest.approx([128, 128, 128], abs=30)


def test_small_images_are_upscaled_with_a_warning(tmp_path):
    root = tmp_path / "A"
    save(root / "tiny.png", noise(20))
    save(root / "fine.png", noise(40))
    ds = ImageFolder(root, load_size=36, min_size=32)
    assert ds.get(ds.files.index(str(root / "tiny.png"))).shape == (3, 36, 36)
    assert len(ds.warnings) == 1 and "tiny.png" in ds.warnings[0] and "upscaled" in ds.warnings[0]


# --- the decompression-bomb guard --------------------------------------------------------------

def test_huge_header_refused_without_decoding(tmp_path, monkeypatch):
    loads = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self) or real_load(self))
    limit_before = Image.MAX_IMAGE_PIXELS
    cases = [(100_000, 100_000), (10_000, 9_500), (10_000, 12_000)]  # PIL: error, PIL: warning, ours only
    for w, h in cases:
        p = png_header_only(tmp_path / f"bomb_{w}x{h}.png", w, h)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(DataError) as e:
                load_image(p)
        assert time.perf_counter() - t0 < 0.5
        assert str(e.value) == f"{p}: refused: {w * h} pixels exceeds the limit of 80000000 (max_pixels)"
        # No DecompressionBombWarning (nor anything else of ours or PIL's) escaped.
        assert [w.category for w in caught if w.category is not ResourceWarning] == []
    assert loads == []  # never decoded
    assert Image.MAX_IMAGE_PIXELS == limit_before  # PIL's own limit is left as it was


def test_pixel_limit_is_the_configured_one(tmp_path):
    p = save(tmp_path / "x.png", noise(10))
    with pytest.raises(DataError, match="refused: 100 pixels exceeds the limit of 99 "):
        load_image(p, max_pixels=99)
    assert load_image(p, max_pixels=100).size == (10, 10)
    root = tmp_path
    ds = ImageFolder(root, load_size=8, max_pixels=100)
    assert len(ds) == 1
    with pytest.raises(DataError, match="nothing usable.*refused"):
        ImageFolder(root, load_size=8, max_pixels=99)


# --- scanning ---------------------------------------------------------------------------------

def test_unicode_spaces_nested_and_case_insensitive_extensions(tmp_path):
    root = tmp_path / "my photos" / "ünïcødé dir"
    names = ["été à la plage 🌞.png", "sub folder/日本 語.JPG", "deep/er/x y.Tiff", "b.WebP", "c.bmp", "d.jpeg"]
    for k, n in enumerate(names):
        fmt = {".JPG": "JPEG", ".Tiff": "TIFF", ".WebP": "WEBP", ".bmp": "BMP", ".jpeg": "JPEG"}.get(Path(n).suffix)
        save(root / n, noise(12, k), fmt)
    save(root / ".hidden" / "secret.png", noise(12))  # hidden folders are not training data
    ds = ImageFolder(root, load_size=8)
    assert sorted(ds.files) == sorted(str(root / n) for n in names)
    assert ds.skipped == []
    assert all(ds.get(i).shape == (3, 8, 8) for i in range(len(ds)))


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlink_loop_terminates(tmp_path):
    root = tmp_path / "A"
    save(root / "a.png", noise(8, 1))
    save(root / "sub" / "b.png", noise(8, 2))
    os.symlink(root, root / "sub" / "loop")         # sub/loop → A
    os.symlink(root / "sub", root / "sub" / "self")  # sub/self → sub
    os.symlink(root / "missing.png", root / "dangling.png")
    t0 = time.perf_counter()
    ds = ImageFolder(root, load_size=8)
    assert time.perf_counter() - t0 < 5
    assert len(ds) == 2  # each real folder walked once
    assert ds.skipped == [Skipped(str(root / "dangling.png"), "broken symbolic link")]


def test_unreadable_file_is_skipped_as_permission_denied(tmp_path, monkeypatch):
    root = tmp_path / "A"
    save(root / "ok.png", noise(8))
    locked = save(root / "locked.png", noise(8))
    real_open = open

    def guarded_open(path, *args, **kw):  # what chmod 000 does for a non-root user
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr(data, "open", guarded_open, raising=False)
    ds = ImageFolder(root, load_size=8)
    assert ds.files == [str(root / "ok.png")]
    assert ds.skipped == [Skipped(str(locked), "permission denied")]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads chmod 000 files")
def test_chmod_000_file_is_skipped(tmp_path):
    root = tmp_path / "A"
    save(root / "ok.png", noise(8))
    locked = save(root / "locked.png", noise(8))
    locked.chmod(0)
    try:
        ds = ImageFolder(root, load_size=8)
    finally:
        locked.chmod(0o644)
    assert ds.skipped == [Skipped(str(locked), "permission denied")]


def test_empty_or_undecodable_folder_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty: nothing usable found in the A folder: no image files"):
        open_domain(empty, cfg(), "A")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"")
    (broken / "b.png").write_bytes(b"")
    (broken / "c.jpg").write_text("text")
    with pytest.raises(DataError) as e:
        open_domain(broken, cfg(), "B")
    msg = str(e.value)
    assert str(broken) in msg and "nothing usable" in msg
    assert "2 × empty file (0 bytes)" in msg and "not an image" in msg
    with pytest.raises(DataError, match="folder not found"):
        open_domain(tmp_path / "nope", cfg(), "A")


def test_same_folder_for_a_and_b_is_refused(tmp_path):
    a = folder_of_colours(tmp_path / "A", 3)
    os.symlink(a, tmp_path / "link")
    assert same_folder(a, tmp_path / "link") and same_folder(a, tmp_path / "A" / ".." / "A")
    assert not same_folder(a, tmp_path)
    for other in (a, tmp_path / "link", tmp_path / "A" / ".." / "A"):
        with pytest.raises(DataError, match="A and B are the same folder"):
            open_domains(a, other, cfg())
    # B containing A: the recursive scan would put A's images into B too.
    folder_of_colours(tmp_path / "B", 2)
    with pytest.raises(DataError, match="3 image.* in both A"):
        open_domains(a, tmp_path, cfg())
    ds_a, ds_b = open_domains(a, tmp_path / "B", cfg())
    assert (len(ds_a), len(ds_b)) == (3, 2) and (ds_a.name, ds_b.name) == ("A", "B")


# --- the cache --------------------------------------------------------------------------------

def count_decodes(monkeypatch) -> list:
    calls = []
    real = data._decode
    monkeypatch.setattr(data, "_decode", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    return calls


def test_cache_decodes_each_image_once(tmp_path, monkeypatch):
    root = folder_of_colours(tmp_path / "A", 5)
    calls = count_decodes(monkeypatch)
    ds = ImageFolder(root, load_size=8, cache_mb=1)
    assert len(calls) == 5  # the scan's check also filled the cache
    first = [ds.get(i) for i in range(5)]
    assert all(torch.equal(ds.get(i), first[i]) for i in range(5))
    assert len(calls) == 5 and first[0].dtype == torch.uint8 and first[0].shape == (3, 8, 8)
    train, val = ds.split(0.2, 1, seed=0)
    [val.get(i) for i in range(len(val))] + [train.get(i) for i in range(len(train))]
    assert len(calls) == 5  # the split views share the cache

    nocache = ImageFolder(root, load_size=8, cache_mb=0)
    before = len(calls)
    nocache.get(0)
    nocache.get(0)
    assert len(calls) == before + 2  # without a budget every get decodes


def test_cache_budget_is_respected(tmp_path):
    root = folder_of_colours(tmp_path / "A", 6)
    ds = ImageFolder(root, load_size=512, cache_mb=2)  # 768 KiB per image: 2 fit
    assert len(ds._store.cache) == 2
    assert all(ds.get(i).shape == (3, 512, 512) for i in range(6))
    assert len(ds._store.cache) == 2


def test_file_failing_after_the_scan_is_replaced_deterministically(tmp_path, caplog):
    root = folder_of_colours(tmp_path / "A", 4)
    ds = ImageFolder(root, load_size=8, cache_mb=0)
    (root / "c01.png").unlink()
    (root / "c02.png").write_bytes(jpeg_bytes(noise(64))[:1500])
    assert torch.equal(ds.get(1), ds.get(3))  # 1 and 2 fail: the next usable image stands in
    assert torch.equal(ds.get(2), ds.get(3))
    assert ds.skipped == [Skipped(str(root / "c01.png"), "file not found"),
                          Skipped(str(root / "c02.png"), "truncated JPEG")]
    assert len(ds) == 4  # the view keeps its length: epochs and steps do not shift
    assert "c01.png" in caplog.text


# --- folders vanishing during training --------------------------------------------------------

def test_deleted_folder_raises_data_gone(tmp_path):
    a, b = folder_of_colours(tmp_path / "A", 3), folder_of_colours(tmp_path / "B", 3)
    ds_a, ds_b = open_domains(a, b, cfg())
    batches = UnpairedBatches(ds_a, ds_b, batch_size=1, crop_size=16, flip=False, seed=0)
    batches.batch(0)
    shutil.rmtree(b)
    with pytest.raises(DataGoneError, match=f"{b}: the B folder has disappeared"):
        batches.batch(1)
    it = batches.prefetch(0)
    with pytest.raises(DataGoneError):
        next(it)


def test_renamed_folder_raises_data_gone_on_a_cache_miss(tmp_path):
    a, _ = folder_of_colours(tmp_path / "A", 3), folder_of_colours(tmp_path / "B", 3)
    ds_a = ImageFolder(a, load_size=8, cache_mb=0)
    a.rename(tmp_path / "A renamed")
    with pytest.raises(DataGoneError, match="disappeared"):
        ds_a.get(0)
    assert ds_a.skipped == []  # not blamed on the file


# --- sampling ---------------------------------------------------------------------------------

def make_batches(tmp_path, n_a=6, n_b=4, *, seed=0, batch_size=2, load=12, crop=8, flip=True, sub=""):
    a = tmp_path / sub / "A"
    b = tmp_path / sub / "B"
    for k in range(n_a):
        save(a / f"{k}.png", noise(16, k))
    for k in range(n_b):
        save(b / f"{k}.png", noise(16, 100 + k))
    c = cfg(load_size=load, crop_size=crop)
    ds_a, ds_b = open_domains(a, b, c)
    return UnpairedBatches(ds_a, ds_b, batch_size=batch_size, crop_size=crop, flip=flip, seed=seed)


def test_batches_are_a_pure_function_of_seed_and_step(tmp_path):
    one = make_batches(tmp_path, sub="one")
    two = make_batches(tmp_path, sub="two")  # separately opened copies of the same data
    assert one.steps_per_epoch == 3
    steps = [7, 0, 3, 12, 1]  # any order
    torch.manual_seed(999)
    got = {s: one.batch(s) for s in steps}
    torch.manual_seed(1)
    for s in sorted(steps):
        a, b = two.batch(s)
        assert torch.equal(a, got[s][0]) and torch.equal(b, got[s][1])
        assert a.shape == b.shape == (2, 3, 8, 8) and a.dtype == torch.float32
        assert a.min() >= -1 and a.max() <= 1 and b.min() >= -1 and b.max() <= 1
    other_seed = make_batches(tmp_path, sub="three", seed=1)
    assert not all(torch.equal(other_seed.batch(s)[0], got[s][0]) for s in steps)
    assert not torch.equal(got[0][0], got[1][0])


def test_prefetch_gives_the_same_batches_and_stops_cleanly(tmp_path):
    ub = make_batches(tmp_path)
    before = set(threading.enumerate())
    it = ub.prefetch(5)
    for s in range(5, 12):
        a, b = next(it)
        ea, eb = ub.batch(s)
        assert torch.equal(a, ea) and torch.equal(b, eb)
    it.close()
    assert set(threading.enumerate()) == before  # the producer thread is joined
    it = ub.prefetch(0)
    next(it)
    del it  # dropped without close(): generator finalisation stops the thread too
    assert set(threading.enumerate()) == before


def test_a_is_walked_as_a_permutation_each_epoch(tmp_path):
    a = folder_of_colours(tmp_path / "A", 6)
    b = folder_of_colours(tmp_path / "B", 4)
    ds_a, ds_b = open_domains(a, b, cfg(load_size=8, crop_size=8))
    ub = UnpairedBatches(ds_a, ds_b, batch_size=2, crop_size=8, flip=True, seed=3)
    assert ub.steps_per_epoch == 3
    orders = []
    for epoch in range(4):
        seen = [colour_index(x) for s in range(3 * epoch, 3 * epoch + 3) for x in ub.batch(s)[0]]
        assert sorted(seen) == list(range(6))  # each A image exactly once per epoch
        assert ub.epoch_of(3 * epoch) == ub.epoch_of(3 * epoch + 2) == epoch
        orders.append(seen)
    assert len({tuple(o) for o in orders}) > 1  # reshuffled between epochs
    b_seen = {colour_index(x) for s in range(12) for x in ub.batch(s)[1]}
    assert b_seen <= set(range(4)) and len(b_seen) > 1


def test_pixel_exact_round_trip(tmp_path):
    pixels = noise(24, 7)
    save(tmp_path / "A" / "x.png", pixels)
    save(tmp_path / "B" / "y.png", noise(24, 8))
    ds_a, ds_b = open_domains(tmp_path / "A", tmp_path / "B", cfg(load_size=24, crop_size=24))
    ub = UnpairedBatches(ds_a, ds_b, batch_size=3, crop_size=24, flip=False, seed=0)
    a, _ = ub.batch(5)
    assert a.min() >= -1 and a.max() <= 1
    out = to_uint8_image(a)
    assert out.shape == (3, 24, 24, 3) and out.dtype == np.uint8
    assert all(np.array_equal(o, pixels) for o in out)
    assert np.array_equal(to_uint8_image(a[0]), pixels)
    assert np.array_equal(to_uint8_image(ub.fixed(1)[0])[0], pixels)


def test_flip_and_crop_are_applied(tmp_path):
    pixels = noise(16, 3)
    save(tmp_path / "A" / "x.png", pixels)
    save(tmp_path / "B" / "y.png", noise(16, 4))
    ds_a, ds_b = open_domains(tmp_path / "A", tmp_path / "B", cfg(load_size=16, crop_size=12))
    ub = UnpairedBatches(ds_a, ds_b, batch_size=1, crop_size=12, flip=True, seed=0)
    crops = [to_uint8_image(ub.batch(s)[0])[0] for s in range(40)]
    windows = {(y, x, f): (pixels[:, ::-1] if f else pixels)[y:y + 12, x:x + 12]
               for y in range(5) for x in range(5) for f in (False, True)}
    found = [next(k for k, w in windows.items() if np.array_equal(w, c)) for c in crops]
    assert {f for _, _, f in found} == {False, True}
    assert len({(y, x) for y, x, _ in found}) > 5
    centre = to_uint8_image(ub.fixed(2)[0])
    assert centre.shape == (2, 12, 12, 3) and np.array_equal(centre[0], pixels[2:14, 2:14])


# --- the held-out split ------------------------------------------------------------------------

def test_split_is_deterministic_disjoint_and_spares_tiny_folders(tmp_path):
    root = folder_of_colours(tmp_path / "A", 20)
    ds = ImageFolder(root, load_size=8)
    train, val = ds.split(0.1, 3, seed=0)
    assert (len(train), len(val)) == (17, 3)
    assert sorted(train.files + val.files) == sorted(ds.files) and not set(train.files) & set(val.files)
    again_train, again_val = ds.split(0.1, 3, seed=0)
    assert again_val.files == val.files and again_train.files == train.files
    assert {tuple(ds.split(0.1, 3, seed=s)[1].files) for s in range(6)} != {tuple(val.files)}
    assert len(ds.split(0.25, 1, seed=0)[1]) == 5
    assert len(ds.split(0.0, 4, seed=0)[1]) == 0  # a fraction of 0 holds nothing out
    small = ImageFolder(folder_of_colours(tmp_path / "small", 6), load_size=8)
    tr, va = small.split(0.05, 4, seed=0)  # 4 held out would leave 2 to train on: hold out none
    assert (len(tr), len(va)) == (6, 0)
    assert len(small.split(0.05, 2, seed=0)[1]) == 2  # 6 ≥ 2·2 + 1
    assert torch.equal(val.get(0), ds.get(ds.files.index(val.files[0])))


# --- small things -----------------------------------------------------------------------------

def test_thumbnail_keeps_the_aspect_ratio(tmp_path):
    save(tmp_path / "A" / "wide.png", solid((0, 0, 255), (200, 100)))
    ds = ImageFolder(tmp_path / "A", load_size=16)
    t = ds.thumbnail(0, size=50)
    assert t.shape == (25, 50, 3) and t.dtype == np.uint8 and (t == (0, 0, 255)).all()


def test_to_uint8_image_rounds_and_clamps():
    t = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0, float("nan")]).view(1, 1, 6).expand(3, 1, 6)
    out = to_uint8_image(t)
    assert out.shape == (1, 6, 3) and out.flags.writeable
    assert out[0, :, 0].tolist() == [0, 0, 128, 255, 255, 128]


# --- native resolution (preprocess "crop") ------------------------------------------------------------

def test_crop_preprocessing_keeps_each_image_at_its_own_resolution(tmp_path):
    rng = np.random.default_rng(0)
    save(tmp_path / "A" / "wide.png", rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    save(tmp_path / "A" / "tall.png", rng.integers(0, 256, (48, 20, 3), dtype=np.uint8))
    save(tmp_path / "A" / "tiny.png", rng.integers(0, 256, (8, 12, 3), dtype=np.uint8))
    ds = open_domain(tmp_path / "A", cfg(preprocess="crop", crop_size=16, load_size=8), "A")  # load_size unused
    shapes = {Path(f).name: tuple(ds.get(i).shape) for i, f in enumerate(ds.files)}
    # Own resolution, pixel for pixel; the tiny one enlarged (aspect kept) to a 16-px shorter side.
    assert shapes == {"wide.png": (3, 24, 40), "tall.png": (3, 48, 20), "tiny.png": (3, 16, 24)}
    wide = ds.files.index(str(tmp_path / "A" / "wide.png"))
    assert np.array_equal(ds.get(wide).permute(1, 2, 0).numpy(), np.array(Image.open(tmp_path / "A" / "wide.png")))
    assert any("tiny.png" in w and "16 px shorter side" in w for w in ds.warnings)
    assert ds.load_size is None and ds.min_side == 16
    assert ds.scale() == 1.0  # median of 1, 1 and 16/8
    # Every crop lies inside its image and equals that image's pixels there.
    batches = UnpairedBatches(ds, ds, batch_size=3, crop_size=16, flip=False, seed=1)
    for step in range(20):
        a, _ = batches.batch(step)
        assert a.shape == (3, 3, 16, 16)
    crops = [batches._random_params(ds.get(wide), i, "A") for i in range(200)]
    assert {y for y, _, _ in crops} == set(range(24 - 16 + 1)) and {x for _, x, _ in crops} == set(range(40 - 16 + 1))


def test_resize_preprocessing_scale_is_load_size_over_the_image_size(tmp_path):
    save(tmp_path / "A" / "a.png", noise(64))
    ds = open_domain(tmp_path / "A", cfg(load_size=16, crop_size=16), "A")
    assert ds.scale() == pytest.approx(0.25) and tuple(ds.get(0).shape) == (3, 16, 16)


def test_the_cache_keeps_images_while_their_bytes_fit_the_budget(tmp_path, monkeypatch):
    root = tmp_path / "A"
    for k in range(6):
        save(root / f"{k}.png", noise(512, seed=k))  # 786,432 bytes each decoded
    calls = count_decodes(monkeypatch)
    ds = ImageFolder(root, load_size=None, cache_mb=2, min_size=16)  # 2 MiB: two of the six fit
    assert len(calls) == 6 and len(ds._store.cache) == 2 and ds._store.used <= 2 << 20
    for i in range(6):
        ds.get(i)
    assert len(calls) == 6 + 4  # the four that did not fit are decoded again on use, the two cached are not
