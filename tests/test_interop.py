"""Reference .pth import, export to safetensors/ONNX/TorchScript, TensorBoard logging."""

from __future__ import annotations

import json
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from engine.__main__ import main
from engine.errors import CheckpointError, MissingExtraError
from engine.io.atomic import atomic_path
from engine.io.export import export_generator, import_reference
from engine.io.reference import read_reference_state_dict
from engine.io.translate import TranslationModel, translate_tensor
from engine.models.networks import NLayerDiscriminator, ResnetGenerator
from engine.training.reports import EvalReport, PreviewReport, ProgressReport


# --- reference-layout files --------------------------------------------------------------------
def reference_generator(ngf: int = 8, n_blocks: int = 6, seed: int = 0) -> ResnetGenerator:
    """Our generator has the reference layout; random weights and biases (init would zero the biases)."""
    torch.manual_seed(seed)
    net = ResnetGenerator(3, 3, ngf, n_blocks).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.1)
    return net


def save_reference(net: nn.Module, path: Path, extra: dict | None = None) -> Path:
    """As the reference saves: ``torch.save(net.cpu().state_dict(), 'latest_net_G.pth')``."""
    sd = net.state_dict()  # an OrderedDict with _metadata, like the published files
    sd.update(extra or {})
    torch.save(sd, path)
    return path


def unet_state_dict(ngf: int = 8, num_downs: int = 7) -> dict[str, torch.Tensor]:
    """Keys and shapes of the reference ``unet_128`` (UnetSkipConnectionBlock nesting, instance norm)."""
    # (outer_nc, inner_nc, input_nc) from the outermost block inwards
    levels = [(3, ngf, 3), (ngf, ngf * 2, ngf), (ngf * 2, ngf * 4, ngf * 2), (ngf * 4, ngf * 8, ngf * 4)]
    levels += [(ngf * 8, ngf * 8, ngf * 8)] * (num_downs - 4)
    sd, prefix = {}, "model"
    for depth, (outer, inner, inp) in enumerate(levels):
        outermost, innermost = depth == 0, depth == len(levels) - 1
        down, up = (0, 3) if outermost else (1, 3) if innermost else (1, 5)
        sd[f"{prefix}.model.{down}.weight"] = torch.randn(inner, inp, 4, 4)
        sd[f"{prefix}.model.{down}.bias"] = torch.randn(inner)
        sd[f"{prefix}.model.{up}.weight"] = torch.randn(inner if innermost else inner * 2, outer, 4, 4)
        sd[f"{prefix}.model.{up}.bias"] = torch.randn(outer)
        prefix = f"{prefix}.model.{1 if outermost else 3}"
    return sd


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("n_blocks,last", [(6, 23), (9, 26)])
def test_reference_key_layout(n_blocks, last):
    idx = {int(k.split(".")[1]) for k in reference_generator(8, n_blocks).state_dict()}
    assert min(idx) == 1 and max(idx) == last
    assert f"model.{last}.bias" in reference_generator(8, n_blocks).state_dict()


@pytest.mark.parametrize("n_blocks", [6, 9])
def test_import_reference_reproduces_outputs(tmp_path, n_blocks):
    net = reference_generator(8, n_blocks)
    pth = save_reference(net, tmp_path / "latest_net_G.pth")
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    want = translate_tensor(net, x)

    model = TranslationModel.from_reference(pth)
    assert model.directions == ["AtoB"] and model.F is None
    assert (model.config.model.ngf, model.config.model.n_blocks) == (8, n_blocks)
    torch.testing.assert_close(translate_tensor(model.G, x), want, atol=1e-6, rtol=0)

    # …and through our model file, which translate and the GUI open
    out, _ = import_reference(pth, tmp_path / "model")
    assert out.name == "model.safetensors"
    again = TranslationModel.load(out)
    assert again.directions == ["AtoB"] and again.config.model.n_blocks == n_blocks
    torch.testing.assert_close(translate_tensor(again.G, x), want, atol=1e-6, rtol=0)


def test_paper_size_generator_imports(tmp_path):
    net = reference_generator(64, 9)
    model = TranslationModel.from_reference(save_reference(net, tmp_path / "horse2zebra.pth"))
    assert sum(p.numel() for p in model.G.parameters()) == 11_378_179  # the paper's G
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(translate_tensor(model.G, x), translate_tensor(net, x), atol=1e-6, rtol=0)


def test_two_files_make_both_directions(tmp_path):
    g, f = reference_generator(8, 6, seed=1), reference_generator(8, 6, seed=2)
    model = TranslationModel.from_reference(save_reference(g, tmp_path / "latest_net_G_A.pth"),
                                 other=save_reference(f, tmp_path / "latest_net_G_B.pth"))
    assert model.directions == ["AtoB", "BtoA"]
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(translate_tensor(model.F, x), translate_tensor(f, x), atol=1e-6, rtol=0)
    torch.testing.assert_close(translate_tensor(model.G, x), translate_tensor(g, x), atol=1e-6, rtol=0)


def test_stray_instance_norm_buffers_are_ignored(tmp_path):
    net = reference_generator(8, 6)
    stray = {}
    for name, m in net.named_modules():
        if isinstance(m, nn.InstanceNorm2d):  # what pre-0.4 PyTorch saved for every norm layer
            c = m.num_features
            stray |= {f"{name}.running_mean": torch.randn(c), f"{name}.running_var": torch.rand(c) + 5,
                      f"{name}.num_batches_tracked": torch.tensor(1000)}
    assert "model.2.running_mean" in stray and "model.10.conv_block.6.running_var" in stray
    model = TranslationModel.from_reference(save_reference(net, tmp_path / "old.pth", stray))
    x = torch.rand(1, 3, 24, 24) * 2 - 1
    torch.testing.assert_close(translate_tensor(model.G, x), translate_tensor(net, x), atol=1e-6, rtol=0)


def test_wrapped_and_dataparallel_state_dicts(tmp_path):
    net = reference_generator(8, 6)
    sd = net.state_dict()
    torch.save({"epoch": 200, "state_dict": sd}, tmp_path / "wrapped.pth")
    torch.save(OrderedDict((f"module.{k}", v) for k, v in sd.items()), tmp_path / "dp.pth")
    for name in ("wrapped.pth", "dp.pth"):
        assert read_reference_state_dict(tmp_path / name).keys() == sd.keys()
        assert TranslationModel.from_reference(tmp_path / name).G is not None


def test_unet_file_says_not_supported_yet(tmp_path):
    torch.save(unet_state_dict(), tmp_path / "unet.pth")
    with pytest.raises(CheckpointError, match=r"U-Net generator; only ResNet generators are supported yet"):
        TranslationModel.from_reference(tmp_path / "unet.pth")


@pytest.mark.parametrize("content,fragment", [
    (lambda: NLayerDiscriminator(3, 8, 3).state_dict(), "looks like a PatchGAN discriminator"),
    (lambda: {"fc.weight": torch.randn(10, 4), "fc.bias": torch.randn(10)}, "not a CycleGAN ResNet generator"),
    (lambda: torch.randn(3, 3), "holds a Tensor, not a generator state_dict"),
    (lambda: {"epoch": 3, "note": "hi"}, "holds no generator state_dict"),
    (lambda: {"model.1.weight": torch.randn(8, 3, 3, 3)}, "model.1.weight has shape (8, 3, 3, 3)"),
])
def test_non_generator_files_are_refused_clearly(tmp_path, content, fragment):
    torch.save(content(), tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        TranslationModel.from_reference(tmp_path / "x.pth")


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"this is not a zip or a pickle")
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        TranslationModel.from_reference(tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        TranslationModel.from_reference(tmp_path / "nope.pth")


# --- CLI: import-reference, translate with a .pth ---------------------------------------------
def test_cli_import_reference_then_translate(tmp_path, capsys):
    g, f = reference_generator(8, 6, seed=1), reference_generator(8, 6, seed=2)
    a, b = save_reference(g, tmp_path / "latest_net_G_A.pth"), save_reference(f, tmp_path / "latest_net_G_B.pth")
    out = tmp_path / "h2z.safetensors"
    assert main(["import-reference", str(a), "--other", str(b), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "A→B and B→A" in said and "6 blocks, ngf 8" in said

    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    img = Image.fromarray(rng.integers(0, 256, (22, 30, 3), dtype=np.uint8))
    img.save(tmp_path / "in" / "x.png")
    for model_path, direction, net in ((out, "BtoA", f), (a, "AtoB", g)):  # our file, and the .pth directly
        dst = tmp_path / f"out_{direction}"
        assert main(["translate", str(model_path), str(tmp_path / "in"), "--out", str(dst),
                     "--direction", direction]) == 0
        got = np.asarray(Image.open(dst / f"x_{direction}.png"))
        want = np.asarray(TranslationModel(net, None, None, "t").translate(img, "AtoB"))
        assert got.shape == (22, 30, 3) and np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_cli_import_reference_errors(tmp_path, capsys):
    assert main(["import-reference", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "m")]) == 2
    assert "does not exist" in one_line_error(capsys)
    save_reference(reference_generator(8, 6), tmp_path / "g.pth")
    assert main(["import-reference", str(tmp_path / "g.pth"), "--out", str(tmp_path / "m.pt")]) == 2
    assert "must end in .safetensors" in one_line_error(capsys)


# --- export ----------------------------------------------------------------------------------
@pytest.fixture
def two_way_model(tmp_path) -> tuple[Path, TranslationModel]:
    g, f = reference_generator(8, 6, seed=3), reference_generator(8, 6, seed=4)
    path, model = import_reference(save_reference(g, tmp_path / "g.pth"), tmp_path / "model.safetensors",
                                   save_reference(f, tmp_path / "f.pth"))
    return path, model


def test_export_safetensors_keeps_direction_and_config(tmp_path, two_way_model, capsys):
    path, model = two_way_model
    out = tmp_path / "exp" / "f_only.safetensors"
    assert main(["export", str(path), "--direction", "BtoA", "--out", str(out)]) == 0
    assert "BtoA generator as safetensors" in capsys.readouterr().out
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as fh:
        meta = fh.metadata()
    assert meta["directions"] == "BtoA" and json.loads(meta["config"])["model"]["ngf"] == 8
    again = TranslationModel.load(out)
    assert again.directions == ["BtoA"]
    x = torch.rand(1, 3, 20, 20) * 2 - 1
    torch.testing.assert_close(translate_tensor(again.F, x), translate_tensor(model.F, x), atol=1e-6, rtol=0)


def test_export_onnx_has_dynamic_size_and_matches_pytorch(tmp_path, two_way_model, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path, model = two_way_model
    out = tmp_path / "g.onnx"
    assert main(["export", str(path), "--format", "onnx", "--direction", "AtoB", "--out", str(out)]) == 0
    capsys.readouterr()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["cyclegan_studio.direction"] == "AtoB"
    assert json.loads(meta["cyclegan_studio.config"])["model"]["n_blocks"] == 6
    # traced at 64×64; run at other sizes, batches and sizes that are not multiples of 4
    for shape in [(1, 3, 48, 80), (2, 3, 37, 50)]:
        x = torch.rand(*shape) * 2 - 1
        got = sess.run(None, {"input": x.numpy()})[0]
        want = translate_tensor(model.G, x).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_torchscript_matches_pytorch(tmp_path, two_way_model):
    _, model = two_way_model
    out = export_generator(model, "BtoA", "torchscript", tmp_path / "f.pt")
    files = {"cyclegan_studio.json": ""}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)
        loaded = torch.jit.load(str(out), _extra_files=files)
    assert json.loads(files["cyclegan_studio.json"])["direction"] == "BtoA"
    for shape in [(1, 3, 48, 80), (2, 3, 37, 50)]:
        x = torch.rand(*shape) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), translate_tensor(model.F, x), atol=1e-6, rtol=0)


def test_export_without_the_extra_says_how_to_install(tmp_path, two_way_model, monkeypatch, capsys):
    path, model = two_way_model
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install -e \.\[export\]"):
        export_generator(model, "AtoB", "onnx", tmp_path / "g.onnx")
    assert main(["export", str(path), "--out", str(tmp_path / "g.onnx")]) == 2
    assert "pip install -e .[export]" in one_line_error(capsys)
    assert not (tmp_path / "g.onnx").exists()


def test_export_errors(tmp_path, capsys):
    one_way, _ = import_reference(save_reference(reference_generator(8, 6), tmp_path / "g.pth"), tmp_path / "one")
    assert main(["export", str(one_way), "--direction", "BtoA", "--out", str(tmp_path / "x.pt")]) == 2
    assert "no BtoA generator" in one_line_error(capsys)
    assert main(["export", str(one_way), "--out", str(tmp_path / "x.bin")]) == 2
    assert "--format" in one_line_error(capsys)
    assert main(["export", str(tmp_path / "nothing.safetensors"), "--out", str(tmp_path / "x.pt")]) == 2
    one_line_error(capsys)


def test_failed_export_leaves_the_old_file_and_no_temp(tmp_path, two_way_model, monkeypatch):
    _, model = two_way_model
    target = tmp_path / "f.pt"
    target.write_bytes(b"old")

    def broken_save(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(torch.jit, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_generator(model, "AtoB", "torchscript", target)
    with pytest.raises(RuntimeError, match="half written"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("half written")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pt", "f.pth", "g.pth", "model.safetensors"]


# --- TensorBoard -----------------------------------------------------------------------------
def test_tensorboard_logger_writes_scalars_and_previews(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from engine.training.tb import TensorBoardLogger, tensorboard_available

    assert tensorboard_available()
    imgs = {k: np.full((1, 16, 16, 3), i * 40, np.uint8)
            for i, k in enumerate(("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"))}
    with TensorBoardLogger(tmp_path) as tb:
        for step in (10, 20):
            tb.progress(ProgressReport(step, 100, 1, 2e-4, 3.5, 3.5, 1.0, 9.0,
                                       {"G_A": 0.5 + step, "D_B": 0.25, "w_A": float("nan")}))
        tb.log(EvalReport(20, 2.0, {"w_A_val": 1.25}))
        tb.preview(PreviewReport(20, imgs))
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0

    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"losses/G_A", "losses/D_B", "lr", "its_per_s", "eval/w_A_val"} <= set(tags["scalars"])
    assert "losses/w_A" not in tags["scalars"]  # non-finite values are skipped
    assert [(e.step, e.value) for e in acc.Scalars("losses/G_A")] == [(10, 10.5), (20, 20.5)]
    assert acc.Scalars("lr")[0].value == pytest.approx(2e-4)
    assert acc.Scalars("eval/w_A_val")[0].value == 1.25
    (img,) = acc.Images("preview")
    assert img.step == 20 and img.width > 16 * 3


def test_tensorboard_missing_is_a_clear_error(tmp_path, monkeypatch):
    from engine.training.tb import TensorBoardLogger, tensorboard_available

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    assert not tensorboard_available()
    with pytest.raises(MissingExtraError, match="pip install tensorboard"):
        TensorBoardLogger(tmp_path)
    assert not (tmp_path / "tb").exists()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "safetensors"])
def test_input_skip_generators_export_and_reload_exactly(tmp_path, fmt):
    """A skip generator without normalisation survives every format: same outputs, skip detected from the file."""
    from engine.config import preset
    from engine.models.networks import build_generator

    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    cfg = preset("cpu-quick").with_values(netG="resnet", ngf=8, n_blocks=1, input_skip=True, norm="none")
    torch.manual_seed(3)
    g = build_generator(cfg).eval()
    with torch.no_grad():
        g.model[-2].weight.normal_(0.0, 0.05)  # leave the identity start, so the skip and the net both matter
    model = TranslationModel(g, None, cfg, "test")
    suffix = {"torchscript": "pt", "onnx": "onnx", "safetensors": "safetensors"}[fmt]
    out = export_generator(model, "AtoB", fmt, tmp_path / f"g.{suffix}")
    x = torch.rand(2, 3, 36, 44) * 2 - 1
    want = translate_tensor(g, x)
    assert not torch.allclose(want, x, atol=1e-2)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)
            got = torch.jit.load(str(out))(x)
    elif fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])
    else:
        again = TranslationModel.load(out)
        assert again.G.input_skip and again.config.model.norm == "none"
        got = translate_tensor(again.G, x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
