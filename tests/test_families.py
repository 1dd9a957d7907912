"""The colour and local generator families: what each can see, their files, tiles and .cube LUTs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.config import preset
from engine.errors import CheckpointError
from engine.io import lut as lut_module
from engine.io.checkpoint_files import check_architecture
from engine.io.export import apply_lut, cube_lut, export_generator, read_cube
from engine.io.tiling import receptive_reach, translate_tiled
from engine.io.translate import TranslationModel
from engine.models.families import ColourGenerator, LocalGenerator
from engine.models.networks import build_generator, generator_arch_from_state_dict, generator_from_state_dict


def randomised(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every weight random (the local path's last conv starts at zero, which would hide its reach)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return net.eval()


def test_the_colour_map_sees_each_pixel_alone():
    net = randomised(ColourGenerator())
    x = torch.rand(1, 3, 24, 24) * 2 - 1
    perm = torch.randperm(24 * 24)
    shuffled = x.flatten(2)[..., perm].reshape(1, 3, 24, 24)
    with torch.no_grad():
        y, y_shuffled = net(x), net(shuffled)
    # Shuffling the pixels shuffles the output the same way: no pixel's output depends on where it is or on its
    # neighbours.
    assert torch.allclose(y.flatten(2)[..., perm].reshape(1, 3, 24, 24), y_shuffled, atol=1e-6)
    assert receptive_reach(net) == 0


def test_the_local_generator_sees_exactly_its_reach():
    net = randomised(LocalGenerator())
    assert net.reach == 12  # 3σ of the widest blur (σ 4)
    x = torch.rand(1, 3, 48, 48) * 2 - 1
    poked = x.clone()
    poked[..., 24, 24] = -poked[..., 24, 24]
    with torch.no_grad():
        diff = (net(poked) - net(x)).abs().amax(dim=1)[0]
    changed = torch.nonzero(diff > 1e-6)
    reach = (changed - 24).abs().amax().item()
    assert reach == 12  # within 3σ of the widest blur: a pixel 12 px away sees the poke, one 13 px away does not
    assert receptive_reach(net) >= net.reach  # tiles get at least that margin


def test_the_local_generators_blurs_run_in_fp32_under_bf16_autocast_on_channels_last_input():
    # What the trainer feeds it under amp and resize upsampling. On a CPU with native bf16, a bf16 depthwise
    # convolution of a channels-last tensor with a kernel 15 px or wider never returned (the σ 4 blur is 25 wide):
    # the local family hung in its first step. So this runs in a child process that is killed if it does not
    # return, and on any CPU the blurred channels must be the fp32 blur's, not bf16-rounded ones.
    code = textwrap.dedent("""
        import torch
        from engine.models.families import LocalGenerator
        net = LocalGenerator().eval()
        x = (torch.rand(2, 3, 40, 40) * 2 - 1).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            exact = net.features(x.contiguous())
            with torch.autocast("cpu", dtype=torch.bfloat16):
                feats, out = net.features(x), net(x)
        assert feats.dtype == torch.float32 and out.shape == (2, 3, 40, 40)
        print((feats - exact).abs().max().item())
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    assert p.returncode == 0, p.stderr
    assert float(p.stdout) < 1e-6  # a bf16 blur is off by about 3e-3


@pytest.mark.parametrize("family", ["colour", "local"])
def test_a_family_starts_as_a_colour_map_and_builds_from_its_config(family):
    cfg = preset("cpu-quick").with_values(netG=family, ngf=8)
    net = build_generator(cfg).eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        y = net(x)
        shuffled = net(x.flatten(2).flip(-1).reshape(1, 3, 16, 16))
    # At the start the local path adds nothing: both families are per-pixel maps.
    assert torch.allclose(shuffled, y.flatten(2).flip(-1).reshape(1, 3, 16, 16), atol=1e-6)
    assert y.abs().max() < 1.0


def colour_cube(n: int = 17) -> torch.Tensor:
    """Every colour of an n³ grid over [-1, 1]³, as one (1, 3, n², n) image."""
    v = torch.linspace(-1, 1, n)
    return torch.stack(torch.meshgrid(v, v, v, indexing="ij")).reshape(1, 3, n * n, n)


@pytest.mark.parametrize("family", ["colour", "local"])
def test_a_family_starts_passing_every_colour_through_unless_asked_for_a_random_map(family):
    cfg = preset("cpu-quick").with_values(netG=family, ngf=8)
    torch.manual_seed(3)
    fitted = build_generator(cfg).eval()
    torch.manual_seed(3)
    again = build_generator(cfg).eval()
    torch.manual_seed(3)
    drawn = build_generator(cfg.with_values(map_start="random")).eval()
    cube = colour_cube()
    with torch.no_grad():
        err, err_drawn = (fitted(cube) - cube).abs(), (drawn(cube) - cube).abs()
    # Within 3/255 on average and 0.15 at worst (the cube's corners, where tanh saturates), over the whole cube;
    # a random draw is nowhere near.
    assert err.mean() < 0.025 and err.max() < 0.15 and err_drawn.mean() > 0.2
    assert all(torch.equal(p, q) for p, q in zip(fitted.state_dict().values(), again.state_dict().values()))
    if family == "local":  # the neighbourhood's weights stay at zero: still exactly a colour map
        assert fitted.colour[0].weight[:, 3:].abs().max() == 0
    assert all(p.grad is None for p in fitted.parameters())


@pytest.mark.parametrize("family", ["colour", "local"])
def test_a_family_state_dict_says_what_to_build(family):
    cfg = preset("cpu-quick").with_values(netG=family, ngf=8)
    net = randomised(build_generator(cfg))
    arch = generator_arch_from_state_dict(net.state_dict())
    assert arch["family"] == family
    again = generator_from_state_dict(net.state_dict(), "file")
    x = torch.rand(2, 3, 20, 20) * 2 - 1
    with torch.no_grad():
        assert torch.equal(again(x), net(x))
    check_architecture(cfg, net.state_dict(), "file")  # fits its own config
    with pytest.raises(CheckpointError, match=f"expected a resnet generator, found a {family} one"):
        check_architecture(preset("cpu-quick").with_values(netG="resnet"), net.state_dict(), "file")


def test_a_damaged_family_file_is_refused_with_a_message():
    sd = ColourGenerator().state_dict()
    sd["colour.0.weight"] = torch.zeros(64, 5, 1, 1)
    with pytest.raises(CheckpointError, match="not a colour map"):
        generator_from_state_dict(sd, "bad.safetensors")


@pytest.mark.parametrize("family", ["colour", "local"])
def test_tiled_translation_equals_the_whole_image(family):
    net = randomised(build_generator(preset("cpu-quick").with_values(netG=family, ngf=8)))
    x = torch.randint(0, 256, (1, 3, 100, 140), dtype=torch.uint8)
    whole = translate_tiled(net, x, tile=200)  # one tile
    tiled = translate_tiled(net, x, tile=32)
    assert (whole.int() - tiled.int()).abs().max() <= 1  # float rounding at most one grey level apart


def test_a_colour_model_exports_a_cube_lut_that_grades_like_the_model(tmp_path):
    torch.manual_seed(3)
    net = ColourGenerator().eval()  # as initialised for training: a smooth map, as trained ones are
    model = TranslationModel(net, None, preset("cpu-quick").with_values(netG="colour"), "test", step=7)
    path = export_generator(model, "AtoB", "cube", tmp_path / "grade.cube")
    text = path.read_text()
    assert "LUT_3D_SIZE 33" in text and text.count("\n") == 33 ** 3 + 5
    lut = read_cube(path)
    assert torch.allclose(lut, cube_lut(net), atol=1e-6)  # six decimals: far below a grey level
    # The file's grid points are the model's colours, red changing fastest.
    assert torch.allclose(lut[0, 0, 1], (net(torch.tensor([[[[2 / 32 - 1]], [[-1.0]], [[-1.0]]]]))[0, :, 0, 0] + 1) / 2,
                          atol=1e-5)
    # A grading tool's trilinear look-up stays within half a grey level of the model (a 33-point grid of a
    # smooth map; a map with sharper bends would need a finer grid).
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        err = (apply_lut(lut, x) - net(x)).abs() * 127.5
    assert err.mean() < 0.1 and err.max() < 0.5


def _network_pass(net: torch.nn.Module, img: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(img).float().div(127.5).sub(1.0).permute(2, 0, 1)[None]
        return ((net(x) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("sharpness, grid", [(1.0, 65), (2.25, 129), (4.0, None)])
def test_a_large_photo_goes_through_a_checked_lut_within_a_grey_level(monkeypatch, sharpness, grid):
    torch.manual_seed(0)
    net = ColourGenerator().eval()
    with torch.no_grad():  # sharper maps bend more between grid points: a finer grid, or the network itself
        for p in net.parameters():
            p.mul_(sharpness)
    sizes = []
    real = lut_module.translate_by_lut
    monkeypatch.setattr("engine.io.translate.translate_by_lut",
                        lambda table, *a, **k: sizes.append(table.shape[-1]) or real(table, *a, **k))
    img = np.random.default_rng(1).integers(0, 256, (530, 540, 3), dtype=np.uint8)  # just over 65³ pixels
    model = TranslationModel(net, None, None, "test")
    out = np.asarray(model.translate(Image.fromarray(img)))
    assert sizes == ([grid] if grid else [])
    assert model.last_route == (f"a checked {grid}³ LUT" if grid else "one piece")  # what the app's caption says
    assert np.abs(out.astype(int) - _network_pass(net, img).astype(int)).max() <= 1
    small = img[:100, :100]  # fewer pixels than the table has points: the network, exactly
    assert np.array_equal(np.asarray(model.translate(Image.fromarray(small))), _network_pass(net, small))
    assert sizes == ([grid] if grid else [])


@pytest.mark.parametrize("family", ["local", "resnet"])
def test_only_a_colour_map_exports_as_a_cube(tmp_path, family):
    net = build_generator(preset("cpu-quick").with_values(netG=family, ngf=8, n_blocks=1))
    model = TranslationModel(net, None, None, "test")
    with pytest.raises(ValueError, match="per-pixel colour map"):
        export_generator(model, "AtoB", "cube", tmp_path / "x.cube")
    assert not (tmp_path / "x.cube").exists()


@pytest.mark.parametrize("family", ["colour", "local"])
def test_a_family_model_round_trips_through_its_files(tmp_path, family):
    cfg = preset("cpu-quick").with_values(netG=family, ngf=8)
    g, f = randomised(build_generator(cfg), 1), randomised(build_generator(cfg), 2)
    model = TranslationModel(g, f, cfg, "test", step=3)
    model.save(tmp_path / "m.safetensors")
    again = TranslationModel.load(tmp_path / "m.safetensors")
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8))
    for way in ("AtoB", "BtoA"):
        assert np.array_equal(np.asarray(again.translate(img, way)), np.asarray(model.translate(img, way)))
