"""Tiled translation: seams equal to the whole-image pass, whole-image statistics for instance norm,
tiles sized by memory, progress, and out of memory as a one-line error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.__main__ import main
from engine.config import preset, with_recipe
from engine.devices import memory_in_use
from engine.io.tiling import OutOfMemory, _pooled_norms, fold_norms, receptive_reach, tile_for_memory, translate_tiled
from engine.io.translate import TranslationModel, memory_left
from engine.metrics import psnr
from engine.models.networks import build_generator, translate_tensor

# A normalisation-free generator with the input skip (resize upsampling, as the studio recipe has).
FREE = {"norm": "none", "input_skip": True}


def generator(recipe: str, n_blocks: int = 3, seed: int = 0, **overrides) -> torch.nn.Module:
    """A small generator, initialised as for training, whose every branch carries signal (a skip
    generator starts its residual branches and last conv at zero: they get small weights here)."""
    torch.manual_seed(seed)
    cfg = with_recipe(preset("cpu-quick"), recipe).with_values(ngf=8, n_blocks=n_blocks, **overrides)
    net = build_generator(cfg).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d) and not m.weight.any():
            torch.nn.init.normal_(m.weight, 0.0, 0.05)
    return net


def photo(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth uint8 (1, 3, h, w) image with structure at several scales."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    x = x + 0.1 * torch.rand(1, 3, h, w, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1


def to_u8(y: torch.Tensor) -> torch.Tensor:
    return y.clamp(-1, 1).add(1).mul(127.5).round()


@pytest.mark.parametrize("tile", [48, 64, 100])
def test_tiles_of_a_normalisation_free_generator_equal_the_whole_image(tile):
    net = generator("studio", **FREE)
    x = photo(150, 190)
    whole = to_u8(translate_tensor(net, to_float(x)))
    tiled = translate_tiled(net, x, tile=tile).float()
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() <= 1  # within 1/255: rounding of a float sum in another order


def test_too_small_a_margin_would_show_seams():
    """The margin is what makes the tiles exact: without it the tile borders differ from the whole pass."""
    import engine.io.tiling as tiling

    net = generator("studio", **FREE)
    x = photo(128, 128)
    whole = to_u8(translate_tensor(net, to_float(x)))
    real = tiling.receptive_reach
    try:
        tiling.receptive_reach = lambda net: 4
        seamed = translate_tiled(net, x, tile=64).float()
    finally:
        tiling.receptive_reach = real
    assert (seamed - whole).abs().max() > 8


def test_instance_norm_tiles_use_the_whole_images_statistics():
    """Per-tile statistics would make seams; the sampled statistics pass keeps the tiled result close to
    the whole-image pass: PSNR above 35 dB between the two here (measured 37–48 dB on 512–1024 px images
    with 128–256 px tiles), against about 20 dB for tiles each normalised by its own statistics."""
    net = generator("paper", n_blocks=3)
    x = photo(384, 384, seed=1)
    whole = to_u8(translate_tensor(net, to_float(x)))
    tiled = translate_tiled(net, x, tile=96).float()
    assert psnr(tiled, whole) > 35
    # For contrast: each tile normalised by its own statistics.
    own = torch.empty_like(whole)
    for y0 in range(0, 384, 96):
        for x0 in range(0, 384, 96):
            own[..., y0:y0 + 96, x0:x0 + 96] = to_u8(translate_tensor(net, to_float(x[..., y0:y0 + 96, x0:x0 + 96])))
    assert psnr(own, whole) < psnr(tiled, whole) - 10


def test_tile_size_follows_the_memory_budget():
    net = generator("studio", **FREE)
    assert tile_for_memory(net, 1 << 30, (100, 100)) == 100  # fits at once: one piece
    small = tile_for_memory(net, 64 << 20, (6000, 4000))
    big = tile_for_memory(net, 1 << 30, (6000, 4000))
    assert 64 <= small < big < 6000 and small % 4 == 0
    assert receptive_reach(net) % 4 == 0


def test_progress_counts_tiles_and_the_model_api_tiles_by_memory():
    net = generator("studio", **FREE)
    model = TranslationModel(net, None, None, "test")
    seen = []
    img = Image.fromarray(photo(130, 70)[0].permute(1, 2, 0).numpy())
    out = model.translate(img, "AtoB", tile=32, progress=lambda d, t: seen.append((d, t)))
    assert out.size == img.size and seen[-1] == (15, 15) and [d for d, _ in seen] == list(range(1, 16))
    whole = model.translate(img, "AtoB", tile=1000)
    assert np.abs(np.asarray(out, int) - np.asarray(whole, int)).max() <= 1


def test_an_image_too_large_for_the_memory_cap_is_refused_with_a_message():
    """A cap that the image's own tensors use up leaves no room for a tile: a message, not a math error."""
    model = TranslationModel(generator("studio", **FREE), None, None, "test")
    img = Image.new("RGB", (1200, 800))
    with pytest.raises(OutOfMemory, match="give a larger --max-memory"):
        model.translate(img, "AtoB", max_memory=6 * 3 * 1200 * 800)


def test_out_of_memory_is_a_one_line_message_from_the_cli(tmp_path, capsys, monkeypatch):
    net = generator("studio", **FREE)
    # saved with cpu-quick's config (instance norm): reloaded, the generator runs the statistics pass first,
    # and running out of memory there is the same one-line message as in a tile
    TranslationModel(net, None, preset("cpu-quick"), "m").save(tmp_path / "m.safetensors")
    Image.fromarray(photo(64, 64)[0].permute(1, 2, 0).numpy()).save(tmp_path / "in.png")

    def boom(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")

    monkeypatch.setattr(type(net), "forward", boom)
    with pytest.raises(OutOfMemory, match="smaller --max-memory"):
        TranslationModel.load(tmp_path / "m.safetensors").translate(Image.open(tmp_path / "in.png"))
    rc = main(["translate", str(tmp_path / "m.safetensors"), str(tmp_path / "in.png"), "--out", str(tmp_path / "o"),
               "--tile", "32"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "did not fit in memory" in err[0] and "--tile 64" in err[0]


@pytest.mark.parametrize("recipe,affine", [("paper", False), ("studio", False), ("paper", True)])
def test_norms_folded_into_the_convs_compute_the_same_as_the_norms(recipe, affine):
    """With the whole image's own statistics, the folded copy (no norms left) equals the plain whole-image pass:
    folding is exact algebra, for transposed and resize upsampling, with and without an affine norm."""
    net = generator(recipe, n_blocks=2)
    if affine:  # a norm with its own scale and shift, as some imported generators have
        g = torch.Generator().manual_seed(3)
        for m in list(net.modules()):
            for i, child in enumerate(m.children() if isinstance(m, torch.nn.Sequential) else []):
                if isinstance(child, torch.nn.InstanceNorm2d):
                    new = torch.nn.InstanceNorm2d(child.num_features, affine=True)
                    new.weight.data = 1 + 0.3 * torch.randn(child.num_features, generator=g)
                    new.bias.data = 0.3 * torch.randn(child.num_features, generator=g)
                    m[i] = new
    x = to_float(photo(96, 128, seed=4))
    whole = to_u8(translate_tensor(net, x))
    stats = {}
    with torch.no_grad(), _pooled_norms(net, stats):
        net(x.clone())  # one image: pooled statistics are its own
    folded = fold_norms(net, stats)
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())  # the original is untouched
    assert (to_u8(translate_tensor(folded, x)) - whole).abs().max() <= 1


def test_the_statistics_pass_never_runs_more_than_a_tile_at_once():
    """Memory follows the tile: the statistics pass goes crop by crop, none larger than a tile with its margins,
    and the tiles themselves run through the folded copy (no norm runs on a tile)."""
    net = generator("paper", n_blocks=2)
    margin, tile = receptive_reach(net), 64
    sizes = []
    net.register_forward_pre_hook(lambda m, args: sizes.append(args[0].shape[0] * args[0].shape[-2:].numel()))
    norm_calls = []
    for m in net.modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.register_forward_pre_hook(lambda m, args: norm_calls.append(1))
    translate_tiled(net, photo(300, 400), tile=tile)
    tiles = 5 * 7  # ⌈300/64⌉ × ⌈400/64⌉; the copy carries the size hook along
    assert len(sizes) == 4 + tiles and max(sizes) <= (tile + 2 * margin + 4) ** 2  # four statistics crops, then tiles
    assert norm_calls == [1] * (4 * sum(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules()))


def test_the_cli_cap_is_the_whole_process_and_too_small_a_cap_says_how_much_to_give():
    net = generator("studio", **FREE)
    held = memory_in_use("cpu")
    assert held > 50 << 20  # torch alone holds more than that: the figure is this process's resident set
    left = memory_left(held + (1 << 30), net)
    assert abs(left - (1 << 30)) < 64 << 20  # what the process holds now is taken off the cap
    with pytest.raises(OutOfMemory, match=r"already holds .* GiB .* give at least \d+\.\dG"):
        memory_left(held // 2, net)
