"""The family search's yardstick: sliced W1 on Laplacian-pyramid bands sees colour, structure and blur."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as Fn

from engine.wasserstein.structure import (
    RealSide,
    _draw,
    _sliced,
    band_distances,
    band_patches,
    pyramid_bands,
    structure_distances,
)


def textured(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """Images with detail at every scale: white noise smoothed a little, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    return Fn.avg_pool2d(torch.rand(n, 3, size, size, generator=g) * 2 - 1, 3, 1, 1).clamp(-1, 1)


def blurred(x: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    r = int(3 * sigma)
    k = torch.exp(-torch.arange(-r, r + 1.0) ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).to(x.dtype)
    x = Fn.conv2d(Fn.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    return Fn.conv2d(Fn.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)


def test_the_bands_add_up_to_the_image():
    x = textured(2, 0)
    detail0, detail1, low = pyramid_bands(x)
    assert low.shape[-1] == 8
    up = lambda t: Fn.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
    torch.testing.assert_close(detail0 + up(detail1 + up(low)), x)
    assert [p.shape[1] for p in band_patches(x)] == [192, 192, 192]


def test_sliced_w1_of_a_translated_sample_is_the_mean_projected_shift():
    """A sample and the same sample moved by v: along a unit direction θ the two differ by θ·v exactly, so
    the sliced W1 is the mean of |θ·v| over the directions."""
    rng = np.random.default_rng(0)
    a = torch.randn(600, 12, dtype=torch.float64)
    v = torch.linspace(-0.5, 0.8, 12, dtype=torch.float64)
    theta = rng.standard_normal((12, 32))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    got = _sliced(a.numpy(), (a + v).numpy(), theta)
    assert abs(got - np.abs(v.numpy() @ theta).mean()) < 1e-9
    assert _sliced(a.numpy(), a.numpy()[::-1].copy(), theta) < 1e-12  # the order of a sample does not matter


def test_blur_reads_clearly_above_the_null_and_mush_above_blur():
    target, other = textured(24, 1), textured(24, 2)  # two samples of one "domain"
    got = structure_distances(target, {"same domain": other, "blurred": blurred(other),
                                       "mush": blurred(other, 3.0) * 0.5}, seed=0)
    null, blur, mush = (got[k] for k in ("same domain", "blurred", "mush"))
    assert blur[0] > 2 * null[0] and blur[1].min() > null[1].max()  # beyond both intervals
    assert mush[0] > blur[0]


def test_a_colour_cast_counts_and_replicates_are_paired_and_seeded():
    target, other = textured(16, 3), textured(16, 4)
    cast = (other + torch.tensor([0.3, 0.0, -0.3]).view(1, 3, 1, 1)).clamp(-1, 1)
    a = structure_distances(target, {"id": other, "cast": cast}, seed=5)
    b = structure_distances(target, {"id": other, "cast": cast}, seed=5)
    assert a["cast"][0] > 2 * a["id"][0]
    assert a["cast"][0] == b["cast"][0] and np.array_equal(a["cast"][1], b["cast"][1])
    assert len(a["id"][1]) == 12 and np.all(a["cast"][1] > a["id"][1])  # replicate by replicate


def test_a_candidates_reading_does_not_depend_on_the_others_read_with_it():
    """The family search reads a candidate once and keeps it: read alone or beside others, it is the same."""
    g = torch.Generator().manual_seed(3)
    target, a, b = (torch.rand(6, 3, 16, 16, generator=g) * 2 - 1 for _ in range(3))
    together = structure_distances(target, {"a": a, "b": b}, seed=5)
    alone = structure_distances(target, {"b": b}, seed=5)
    assert together["b"][0] == alone["b"][0] and np.array_equal(together["b"][1], alone["b"][1])
    assert together["a"][0] != alone["b"][0]


def test_weighed_alike_the_bands_do_not_let_right_colours_hide_invented_detail():
    """The family search's combination: the bands' geometric mean, where the W monitor's structure reading sums
    them. A copy with a colour cast is far from the target in the colour band only; an over-sharpened copy in the
    detail bands only. Summed, the colour band (where the cast is far) outweighs the others and the two read alike;
    weighed alike, the invented detail counts as it is."""
    target, other = textured(16, 3), textured(16, 4)
    cast = (other + torch.tensor([0.4, 0.1, -0.4]).view(1, 3, 1, 1)).clamp(-1, 1)
    sharp = (other + 2 * (other - blurred(other, 1.0))).clamp(-1, 1)
    bands = band_distances(target, {"cast": cast, "sharp": sharp}, seed=5)
    summed = structure_distances(target, {"cast": cast, "sharp": sharp}, seed=5)
    alike = structure_distances(target, {"cast": cast, "sharp": sharp}, seed=5, combine="geometric")
    for name, (d, reps) in bands.items():  # the same resamples, made one per replicate
        assert d.shape == (3,) and reps.shape == (12, 3)
        assert summed[name][0] == pytest.approx(d.sum()) and np.allclose(summed[name][1], reps.sum(1))
        assert alike[name][0] == pytest.approx(np.exp(np.log(d).mean()))
        assert np.allclose(alike[name][1], np.exp(np.log(reps).mean(1)))
    (cast_d, _), (sharp_d, _) = bands["cast"], bands["sharp"]
    assert cast_d[2] > 3 * sharp_d[2] and sharp_d[0] > 10 * cast_d[0]  # far in colour; far in fine detail
    ratio = lambda r: r["sharp"][0] / r["cast"][0]  # noqa: E731
    assert ratio(summed) < 1.3 and ratio(alike) > 2
    # Over another candidate's reading, the geometric mean of the bands' ratios: each band counts by its ratio.
    assert ratio(alike) == pytest.approx(np.exp(np.log(sharp_d / cast_d).mean()))
    with pytest.raises(ValueError, match="combine"):
        structure_distances(target, {"x": other}, combine="max")


def test_a_prepared_real_side_reads_each_band_as_the_sliced_w_of_its_draws():
    """The real side is prepared once (``RealSide``) and read against many times: its reading is each band's sliced
    W1 of the two seeded patch draws over the target band's scale, by hand here; a side prepared with more
    resamples serves fewer exactly, and refuses more, and crops of another size."""
    target, cand = textured(10, 5), textured(6, 6)
    side = RealSide(target, seed=7, n_boot=4)
    d, reps = band_distances(side, {"c": cand}, n_boot=4)["c"]
    rng = np.random.default_rng(7)  # the projections come first from the seed, then the draws from seeds of their own
    projections = rng.standard_normal((192, 64))
    projections = (projections / np.linalg.norm(projections, axis=0, keepdims=True)).astype(np.float32)
    t_bands, c_bands = band_patches(target), band_patches(cand)
    t_draw = _draw(t_bands, np.arange(10), 10, np.random.default_rng(7 + 1), 2000)
    c_draw = _draw(c_bands, np.arange(6), 6, np.random.default_rng(7 + 1000), 2000)
    by_hand = [_sliced(t, c, projections) / float(b.abs().mean()) for t, c, b in zip(t_draw, c_draw, t_bands)]
    assert np.allclose(d, by_hand, rtol=1e-6) and min(by_hand) > 0
    fewer = band_distances(side, {"c": cand}, n_boot=2)["c"]
    assert np.array_equal(fewer[0], d) and np.array_equal(fewer[1], reps[:2])
    assert np.array_equal(band_distances(target, {"c": cand}, seed=7, n_boot=4)["c"][1], reps)
    with pytest.raises(ValueError, match="resamples"):
        band_distances(side, {"c": cand}, n_boot=5)
    with pytest.raises(ValueError):  # 16-px crops: the coarsest band's patches are 4 px, not the target's 8
        band_distances(side, {"small": textured(4, 6, size=16)}, n_boot=0)
