"""engine.data.demo: the procedural summer → winter dataset with ground truth."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data.demo import (
    SUBFOLDERS,
    demo_transform,
    ground_truth_dir,
    is_demo_dataset,
    make_demo_dataset,
    render_scene,
)
from engine.tools.commands import add_cli


def read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGB"
        return np.array(im)


def pngs(d: Path) -> list[Path]:
    return sorted(d.glob("*.png"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict, float]:
    out = tmp_path_factory.mktemp("demo") / "data"
    t0 = time.perf_counter()
    counts = make_demo_dataset(out, n_train=20, n_test=6, size=64, seed=5)
    return out, counts, time.perf_counter() - t0


def test_folders_counts_and_sizes(demo):
    out, counts, _ = demo
    assert counts == {"trainA": 20, "trainB": 20, "testA": 6, "testB": 6, "testA_to_B": 6}
    for sub in SUBFOLDERS:
        files = pngs(out / sub)
        assert len(files) == counts[sub]
        assert all(read(f).shape == (64, 64, 3) for f in files)
    assert [f.name for f in pngs(out / "testA")] == [f.name for f in pngs(out / "testA_to_B")]
    assert is_demo_dataset(out) and not is_demo_dataset(out / "trainA")


def test_ground_truth_is_the_transform_of_test_a_exactly(demo):
    out, _, _ = demo
    for f in pngs(out / "testA"):
        assert np.array_equal(read(out / "testA_to_B" / f.name), demo_transform(read(f)))


def test_a_and_b_are_independent_scenes(demo):
    out, _, _ = demo
    a = np.stack([read(f) for f in pngs(out / "trainA")]).astype(np.float32)
    b = np.stack([read(f) for f in pngs(out / "trainB")]).astype(np.float32)
    ta = np.stack([demo_transform(x) for x in a.astype(np.uint8)]).astype(np.float32)
    # B is not T(A) image by image: the data is unpaired.
    assert all(np.abs(ta[i] - b[i]).mean() > 5 for i in range(len(a)))
    # ... but B is T of *something* from the same distribution: the mean colours match closely.
    assert np.abs(ta.mean((0, 1, 2)) - b.mean((0, 1, 2))).max() < 12
    # And no two scenes are the same.
    assert len({x.tobytes() for x in a}) == len(a)


def test_transform_is_obvious_and_per_pixel():
    grass, sky, trunk = (86, 158, 61), (56, 114, 224), (102, 63, 30)
    img = np.array([[grass, sky, trunk]], np.uint8)
    out = demo_transform(img).astype(int)
    assert out[0, 0].min() > 215                      # green grass → snow white
    assert out[0, 1, 2] - out[0, 1, 0] < 60 and out[0, 1].mean() > 130  # deep blue sky → pale grey-blue
    luma = np.array([0.299, 0.587, 0.114])
    assert out[0, 2] @ luma < img[0, 2] @ luma                         # trunks get darker
    # Per pixel: the same colour maps to the same colour wherever it is.
    tiled = np.tile(img, (5, 4, 1))
    assert np.array_equal(demo_transform(tiled), np.tile(demo_transform(img), (5, 4, 1)))
    with pytest.raises(ValueError):
        demo_transform(img.astype(np.float32))


def test_render_scene_is_deterministic_and_varied():
    a = render_scene(np.random.default_rng(1), 48)
    assert a.shape == (48, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_scene(np.random.default_rng(1), 48))
    assert not np.array_equal(a, render_scene(np.random.default_rng(2), 48))
    assert a[0].mean(0)[2] > a[0].mean(0)[0]        # sky at the top is blue
    assert a[-1].mean(0)[1] > a[-1].mean(0)[2] - 60  # ground at the bottom is green-ish (or lake)


def test_same_seed_same_files_and_rerun_into_the_same_folder(demo, tmp_path):
    out, _, _ = demo
    again = tmp_path / "again"
    make_demo_dataset(again, n_train=20, n_test=6, size=64, seed=5)
    for sub in SUBFOLDERS:
        assert [f.read_bytes() for f in pngs(again / sub)] == [f.read_bytes() for f in pngs(out / sub)]
    make_demo_dataset(again, n_train=3, n_test=2, size=64, seed=6)  # regenerating replaces the old images
    assert len(pngs(again / "trainA")) == 3 and len(pngs(again / "testA_to_B")) == 2
    assert read(again / "trainA" / "0000.png").tobytes() != read(out / "trainA" / "0000.png").tobytes()


def test_refuses_to_write_over_someone_elses_data(tmp_path):
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainA" / "horse.png").write_bytes(b"precious")
    with pytest.raises(ValueError, match="did not write"):
        make_demo_dataset(tmp_path, n_train=1, n_test=1, size=32)
    assert (tmp_path / "trainA" / "horse.png").read_bytes() == b"precious"


def test_full_size_dataset_is_small_and_quick(tmp_path):
    t0 = time.perf_counter()
    make_demo_dataset(tmp_path)
    elapsed = time.perf_counter() - t0
    total = sum(f.stat().st_size for sub in SUBFOLDERS for f in pngs(tmp_path / sub))
    assert len(pngs(tmp_path / "trainA")) == 150 and len(pngs(tmp_path / "testA")) == 24
    assert read(tmp_path / "trainA" / "0000.png").shape == (128, 128, 3)
    assert total < 6e6, f"{total / 1e6:.1f} MB"
    assert elapsed < 15, f"{elapsed:.1f} s"


def test_ground_truth_dir(demo, tmp_path):
    out, _, _ = demo
    assert ground_truth_dir(out / "trainA") == out / "testA_to_B"
    assert ground_truth_dir(out / "testA") == out / "testA_to_B"
    assert ground_truth_dir(str(out / "trainA")) == out / "testA_to_B"
    assert ground_truth_dir(out / "trainB") is None
    (tmp_path / "trainA").mkdir()
    assert ground_truth_dir(tmp_path / "trainA") is None


def test_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo-data", str(tmp_path / "d"), "--n-train", "2", "--n-test", "1", "--size", "32",
                              "--seed", "3"])
    assert args.func(args) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "trainA 2" in line and "testA_to_B 1" in line
    assert is_demo_dataset(tmp_path / "d") and len(pngs(tmp_path / "d" / "trainB")) == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["demo-data", str(tmp_path), "--n-train", "0"])
