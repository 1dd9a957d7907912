"""The channel order the colour and local maps start from: read from the folders' colours, fitted, resolved."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.config import preset
from engine.models.channel_order import (
    ORDER_MARGIN,
    ORDERS,
    describe_order,
    inverse_order,
    order_indices,
    read_channel_order,
    sample_colours,
)
from engine.models.networks import build_generator
from engine.training.search import open_trainer
from tests.helpers import tiny_config


def test_orders_name_where_each_channel_comes_from_and_invert():
    assert ORDERS[0] == "rgb" and len(set(ORDERS)) == 6
    x = torch.arange(3.0)
    for order in ORDERS:
        there = x[list(order_indices(order))]
        assert torch.equal(there[list(order_indices(inverse_order(order)))], x)
    assert order_indices("brg") == (2, 0, 1) and inverse_order("brg") == "gbr"
    assert describe_order("brg") == "R ← B, G ← R, B ← G"
    with pytest.raises(ValueError, match="not a channel order"):
        order_indices("rgg")


def photo_colours(n: int, seed: int) -> torch.Tensor:
    """Colours as photographs have them, not alike in every channel: mostly warm skin and earth, some sky, some
    foliage, a few greys (a uniform cube would read alike in every order)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.80, 0.55, 0.40], [0.45, 0.30, 0.20], [0.45, 0.65, 0.90], [0.30, 0.45, 0.20],
                            [0.50, 0.50, 0.50]])
    which = torch.multinomial(torch.tensor([0.35, 0.25, 0.2, 0.12, 0.08]), n, replacement=True, generator=g)
    return (centres[which] + 0.08 * torch.randn(n, 3, generator=g)).clamp(0, 1)


def false_colour(x: torch.Tensor, order: str) -> torch.Tensor:
    return ((x[:, list(order_indices(order))] - 0.5) * 1.3 + 0.5).clamp(0, 1)


def grade(x: torch.Tensor) -> torch.Tensor:
    """A grade with no channel reordered: darker tone curve, cooler, less saturated."""
    luma = x.mean(1, keepdim=True)
    return ((0.5 * x + 0.5 * luma) ** 1.4 * torch.tensor([0.85, 0.95, 1.1])).clamp(0, 1)


@pytest.mark.parametrize("order", ["brg", "bgr"])
def test_a_reordering_of_the_channels_is_read_from_two_unpaired_samples(order):
    # Two different draws: the target's colours are other pixels than the source's, as two folders' are.
    reading = read_channel_order(photo_colours(2048, 1), false_colour(photo_colours(2048, 2), order), seed=0)
    assert reading.order == order
    assert reading.shares["rgb"] == pytest.approx(1.0)
    assert reading.shares[order] < ORDER_MARGIN
    assert "reordered" in reading.describe() and describe_order(order) in reading.describe()


def test_a_grade_keeps_the_untouched_order():
    reading = read_channel_order(photo_colours(2048, 1), grade(photo_colours(1500, 2)), seed=0)  # samples of two sizes
    assert reading.order == "rgb"
    assert min(reading.shares.values()) > ORDER_MARGIN
    closest = min((o for o in ORDERS if o != "rgb"), key=reading.shares.get)
    assert "untouched" in reading.describe() and f"closest: {closest} at" in reading.describe()


def test_colours_are_sampled_from_uint8_images_without_touching_the_global_random_state():
    images = [torch.full((3, 20, 25), 255, dtype=torch.uint8), torch.zeros((3, 10, 10), dtype=torch.uint8)]
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    colours = sample_colours(images, n=300, seed=3)
    assert torch.equal(torch.rand(1), before)
    assert colours.shape == (300, 3) and set(colours.unique().tolist()) == {0.0, 1.0}
    # Each pixel is drawn alike: 500 white pixels against 100 black ones.
    assert 0.75 < colours[:, 0].mean().item() < 0.92
    assert torch.equal(sample_colours(images, n=300, seed=3), colours)
    assert sample_colours(images, n=10_000).shape == (600, 3)  # no more than the images have pixels
    # The draws are those of one uniform draw over all the images' pixels in a row, taken image by image (a camera
    # photo is never copied whole): the same colours, in the same order, as from the images concatenated.
    mixed = [torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(i))
             for i, shape in enumerate([(3, 17, 23), (3, 40, 9), (3, 5, 5)])]
    pixels = torch.cat([t.reshape(3, -1).T for t in mixed])
    draw = torch.randint(len(pixels), (500,), generator=torch.Generator().manual_seed(4))
    assert torch.equal(sample_colours(mixed, n=500, seed=4), pixels[draw].float() / 255.0)
    with pytest.raises(ValueError, match="no images"):
        sample_colours([])


@pytest.mark.parametrize("family", ["colour", "local"])
def test_a_map_starts_in_its_order_and_the_way_back_at_the_inverse(family):
    cfg = preset("cpu-quick").with_values(netG=family, map_order="brg")
    G, F = build_generator(cfg).eval(), build_generator(cfg, inverse=True).eval()
    v = torch.linspace(-0.9, 0.9, 12)
    x = torch.stack(torch.meshgrid(v, v, v, indexing="ij")).reshape(1, 3, 48, 36)  # wider than the blurs
    with torch.no_grad():
        gx = G(x)
        assert (gx - x[:, [2, 0, 1]]).abs().mean() < 0.03
        assert (F(gx) - x).abs().mean() < 0.05
    # rgb and auto (where nothing resolved it) start untouched, as before
    for order in ("rgb", "auto"):
        with torch.no_grad():
            assert (build_generator(cfg.with_values(map_order=order))(x) - x).abs().mean() < 0.03


def _photo_folder(path, colours_seed: int, order: str | None, n: int = 6, size: int = 24):
    path.mkdir(parents=True)
    for i in range(n):
        px = photo_colours(size * size, colours_seed * 100 + i)
        if order is not None:
            px = false_colour(px, order)
        img = (px.reshape(size, size, 3).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(img).save(path / f"{i}.png")
    return path


def test_the_trainer_reads_the_order_before_training_and_keeps_it_in_its_config(tmp_path, caplog):
    a = _photo_folder(tmp_path / "A", 1, None)
    b = _photo_folder(tmp_path / "B", 2, "brg")
    cfg = tiny_config(netG="colour", load_size=24, crop_size=16, map_order="auto")
    with caplog.at_level("INFO", logger="engine.training.trainer"):
        trainer = open_trainer(cfg, a, b)
    assert trainer.cfg.model.map_order == "brg"
    assert "R ← B, G ← R, B ← G" in caplog.text
    # and the user is told, calmly, before the first step (the app's Notes panel, the CLI's log)
    (note,) = trainer.prelude
    assert (note.code, note.severity, note.step) == ("channel-order", "info", 0)
    assert "R ← B, G ← R, B ← G" in note.message and "map_order=rgb" in note.hint
    x = torch.rand(1, 3, 8, 8) * 1.6 - 0.8
    with torch.no_grad():
        assert (trainer.state.G(x) - x[:, [2, 0, 1]]).abs().mean() < 0.05
        assert (trainer.state.F(x) - x[:, [1, 2, 0]]).abs().mean() < 0.05
    # A pinned order, a random start and the ResNet read nothing.
    for pinned in (dict(map_order="rgb"), dict(map_start="random"), dict(netG="resnet")):
        other = open_trainer(cfg.with_values(pinned), a, b)
        assert other.cfg.model.map_order == pinned.get("map_order", "auto") and other.prelude == []


@pytest.mark.parametrize("order", ["brg", "rgb"])
def test_the_identity_loss_leaves_a_target_image_alone_up_to_the_maps_order(tmp_path, order):
    """λ·λ_id·‖G(b) − b reordered‖₁ and λ·λ_id·‖F(a) − a in the inverse order‖₁, by hand, on the step's own passes:
    maps started in the order pay almost nothing for it, where the untouched identity would charge them the whole
    reordering."""
    a_dir = _photo_folder(tmp_path / "A", 1, None)
    b_dir = _photo_folder(tmp_path / "B", 2, None)
    cfg = tiny_config(netG="colour", load_size=24, crop_size=16, map_order=order, lambda_id=0.5)
    trainer = open_trainer(cfg, a_dir, b_dir)
    assert trainer.cfg.channel_order == order
    a, b = trainer.batches.batch(0)
    losses, p, _ = trainer.step_fn.generator_update(a, b)
    weight = trainer.cfg.cycle_weight * 0.5
    g, f = list(order_indices(order)), list(order_indices(inverse_order(order)))
    assert losses["idt_A"].item() == pytest.approx(weight * (p.idt_b - b[:, g]).abs().mean().item(), rel=1e-5)
    assert losses["idt_B"].item() == pytest.approx(weight * (p.idt_a - a[:, f]).abs().mean().item(), rel=1e-5)
    assert losses["idt_A"].item() < 0.05 * weight
    if order != "rgb":
        assert (p.idt_b - b).abs().mean().item() > 0.1


def test_a_run_that_starts_reordered_says_so_first_and_trains_into_its_folder(tmp_path):
    a = _photo_folder(tmp_path / "A", 1, None)
    b = _photo_folder(tmp_path / "B", 2, "brg")
    cfg = tiny_config(netG="colour", load_size=24, crop_size=16, max_steps=2, map_order="auto")
    reports = list(open_trainer(cfg, a, b, run_dir=tmp_path / "run").run())
    assert reports[0].code == "channel-order" and reports[-1].reason == "completed"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["map_order"] == "brg"  # a resumed run starts from its checkpoint: nothing read again


def test_the_family_search_reads_the_order_once_and_says_so_once(tmp_path):
    a = _photo_folder(tmp_path / "A", 1, None, n=8)
    b = _photo_folder(tmp_path / "B", 2, "brg", n=8)
    cfg = tiny_config(netG="auto", preprocess="auto", load_size=24, crop_size=16, val_fraction=0.3, val_min=2,
                      map_order="auto",
                      max_steps=12, save_every=10**6, preview_every=10**6, eval_every=10**6)
    search = open_trainer(cfg, a, b)
    assert search.cfg.model.map_order == "brg"  # every candidate after the first is built in that order
    reports = list(search.run())
    notes = [r for r in reports if getattr(r, "code", None) == "channel-order"]
    assert len(notes) == 1 and reports[-1].reason == "completed"
