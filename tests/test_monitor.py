"""The W monitor: its cross-fitted estimate against known distances on image patches, its reference
levels, and the best checkpoint it keeps (across a resume too)."""

from __future__ import annotations

import math
import time

import pytest
import torch

from engine.io.checkpoint_files import load_checkpoint
from engine.io.translate import TranslationModel
from engine.training.evaluation import Evaluator
from engine.training.reports import CheckpointReport, EvalReport, FinishedReport, PreviewReport, WarningReport
from engine.training.saving import DRIFT_BELOW, DRIFT_RISE, BestKeeper
from engine.training.trainer import Trainer
from engine.wasserstein.critic import torch_threads
from engine.wasserstein.monitor import AT_FLOOR, UNRESOLVED, Reading, WMonitor, patches_of
from tests.helpers import make_domains, tiny_config

PATCH_DIM = 3 * 8 * 8


@pytest.fixture(autouse=True)
def one_torch_thread():
    with torch_threads(1):
        yield


def smooth_images(n: int, seed: int, size: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.avg_pool2d(torch.rand(n, 3, size, size, generator=g) * 160 + 40, 5, 1, 2)


def u8(images: torch.Tensor, shift: float = 0.0) -> list[torch.Tensor]:
    return [(im + shift).round().clamp(0, 255).to(torch.uint8) for im in images]


class Shift(torch.nn.Module):
    """x + d in [-1, 1] units: a perfect translation when the domains differ by a uniform shift d."""

    def __init__(self, d: float):
        super().__init__()
        self.d = d

    def forward(self, x):
        return x + self.d


def monitor(a, b, **kw) -> WMonitor:
    return WMonitor(a, b, crop=32, first_steps=400, steps=150, **kw)


def test_patches_are_the_squares_of_the_stride_grid():
    img = torch.arange(2 * 3 * 12 * 12, dtype=torch.float32).reshape(2, 3, 12, 12)
    p = patches_of(img, 8, 4)
    assert p.shape == (2 * 2 * 2, PATCH_DIM)
    assert torch.equal(p[1].reshape(3, 8, 8), img[0, :, 0:8, 4:12])
    assert torch.equal(p[6].reshape(3, 8, 8), img[1, :, 4:12, 0:8])


def test_a_uniform_shift_is_measured_at_its_exact_distance_and_a_perfect_translation_at_zero():
    """Shifting every pixel by δ translates the patch distribution by δ·1, so W1 = |δ|·√192 exactly."""
    base = smooth_images(12, seed=0)
    delta = 20.0  # grey levels
    m = monitor(u8(base), u8(base, delta))
    exact = (2 * delta / 255) * math.sqrt(PATCH_DIM)
    at_start = m.measure(torch.nn.Identity(), torch.nn.Identity())
    for r in at_start.values():
        # The one-sided penalty overshoots by W²/(2λ) (+1.2 % here); sampling adds a little.
        assert r.w == pytest.approx(exact, rel=0.05) and r.lo <= r.w <= r.hi
        assert r.remaining == pytest.approx(1.0) and 0.9 < r.grad_norm < 1.2 and r.trustworthy
        assert r.sliced > 0 and r.emd > 0
    shift = 2 * delta / 255
    done = m.measure(Shift(shift), Shift(-shift))
    for way, r in done.items():
        assert abs(r.w) < 0.05 * exact and abs(r.remaining) < 0.1
        assert r.sliced < 0.1 * at_start[way].sliced and r.emd < 0.5 * at_start[way].emd  # the critic-free checks agree


def test_translations_into_a_second_sample_of_the_target_sit_at_the_floor():
    """A and B made of different images: a perfect G makes G(A) and B two samples of one distribution,
    whose distance is the estimator's floor: the remaining distance is about 0."""
    base = smooth_images(24, seed=1)
    delta = 24.0
    m = monitor(u8(base[12:], -delta), u8(base[:12]))
    shift = 2 * delta / 255
    r = m.measure(Shift(shift), Shift(-shift))["AtoB"]
    assert r.floor > 0 and r.start > 5 * r.floor
    assert abs(r.remaining) < 0.15
    # The floor's own interval was measured, and a reading this close to it is said in words, not as "0 %".
    assert r.floor_hi > r.floor and r.standing() == (pytest.approx(math.nan, nan_ok=True), AT_FLOOR)
    half = m.measure(Shift(shift / 2), Shift(-shift / 2))["AtoB"]
    share, words = half.standing(previous=r)
    assert share == pytest.approx(half.remaining) and words == f"{half.remaining * 100:.0f} % of the way left"


def _reading(w: float, half: float = 0.02, start: float = 1.0, floor: float = 0.1, floor_hi: float = 0.15) -> Reading:
    return Reading(w, w - half, w + half, 1.0, start, floor, 0.0, 0.0, floor_hi)


@pytest.mark.parametrize("now, before, expected", [
    (_reading(0.55), None, (0.5, "50 % of the way left")),
    (_reading(0.55), _reading(0.9), (0.5, "50 % of the way left")),  # falling, but far from done: the share
    (_reading(0.14, half=0.005, floor_hi=0.12), _reading(0.3), (math.nan, "still falling")),  # ≤ 5 %, falling
    (_reading(0.14, half=0.005, floor_hi=0.12), _reading(0.142, half=0.005), (0.0444, "4 % of the way left")),
    (_reading(0.14, half=0.005), _reading(0.16, half=0.005), (math.nan, AT_FLOOR)),  # inside the floor's interval
    (_reading(0.17, half=0.03), _reading(0.3), (math.nan, AT_FLOOR)),  # its interval reaches the floor's
    (_reading(0.5, start=0.14), None,  # start within the floor's interval; the reading beyond the start
     (math.nan, UNRESOLVED + "; translations farther than the untranslated images (3.57 ×)")),
    (_reading(0.1, start=0.14, half=0.01), None,
     (math.nan, UNRESOLVED + "; translations closer than the untranslated images (0.71 ×)")),
    (_reading(0.5, half=0.5), None, (math.nan, UNRESOLVED)),  # the span from floor to start within the noise
])
def test_the_share_left_is_shown_only_where_it_means_something(now, before, expected):
    share, words = now.standing(before)
    assert words == expected[1]
    assert share == pytest.approx(expected[0], abs=1e-3, nan_ok=True)
    again = Reading.from_metrics(now.metrics("AtoB"), "AtoB").standing(before)  # as the app reads an eval row
    assert again[1] == words and again[0] == pytest.approx(share, nan_ok=True)


class Blur(torch.nn.Module):
    """A Gaussian blur (σ 1.5 px): the colours stay, the detail goes."""

    def forward(self, x):
        k = torch.exp(-0.5 * (torch.arange(-4, 5, dtype=torch.float32) / 1.5) ** 2)
        k = (k / k.sum()).view(1, 1, 1, -1).expand(3, 1, 1, -1)
        x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (4, 4, 0, 0), mode="reflect"), k, groups=3)
        return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 0, 4, 4), mode="reflect"),
                                          k.transpose(-1, -2), groups=3)


def test_the_multi_scale_reading_sees_blur():
    """A and B two samples of one distribution: doing nothing is a perfect translation, and blurring the
    target's own kind of image is not; the multi-scale distance tells the two apart by far."""
    base = smooth_images(24, seed=4)
    m = monitor(u8(base[:12]), u8(base[12:]))
    same = m.measure(torch.nn.Identity(), torch.nn.Identity())
    blurred = m.measure(Blur(), Blur())
    for way in same:
        assert blurred[way].structure > 2.5 * same[way].structure > 0  # 3.5× when written
        # Its interval, and its identity level: the untranslated sources' own reading (here the identity is the
        # translation, so the two are one reading).
        for r in (same[way], blurred[way]):
            assert r.structure_lo <= r.structure <= r.structure_hi and r.structure_hi > r.structure_lo
        assert same[way].structure == pytest.approx(same[way].structure_start) and blurred[way].structure_lo > \
            same[way].structure_hi
        back = Reading.from_metrics(blurred[way].metrics(way), way)  # as an eval row carries it
        assert (back.structure_lo, back.structure_hi, back.structure_start) == pytest.approx(
            (blurred[way].structure_lo, blurred[way].structure_hi, blurred[way].structure_start))


class Pool:
    """A domain's training images as the monitor draws from them (``len`` and ``get``)."""

    def __init__(self, images: list[torch.Tensor]):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def get(self, index: int) -> torch.Tensor:
        return self.images[index]


def test_the_structure_floor_is_what_real_target_samples_of_the_sources_size_read():
    """The floor of the multi-scale reading: samples of the target's training images, as many as the held-out
    sources, against the held-out target. A second sample of the target's own kind sits within it; blurred target
    images and another kind of image read clearly above its top; without training images there is none."""
    base = smooth_images(48, seed=6)
    held_a, held_b, pool_a, pool_b = u8(base[:8]), u8(base[8:16]), u8(base[16:32]), u8(base[32:48])
    quick = dict(crop=32, first_steps=20, steps=5)  # the critic's W is not looked at here
    m = WMonitor(held_a, held_b, train_a=Pool(pool_a), train_b=Pool(pool_b), **quick)
    same = m.measure(torch.nn.Identity(), torch.nn.Identity())
    blurred = m.measure(Blur(), Blur())
    for way in same:
        r = same[way]
        assert 0 < r.structure_floor < r.structure_floor_hi
        assert r.structure <= r.structure_floor_hi  # one kind of image: doing nothing reads as real samples do
        assert blurred[way].structure_lo > r.structure_floor_hi  # blur is beyond what real samples read
        assert blurred[way].structure_floor == r.structure_floor  # measured once
    shifted = WMonitor(u8(base[:8], 40.0), held_b, train_a=Pool(pool_a), train_b=Pool(pool_b), **quick)
    r = shifted.measure(torch.nn.Identity(), torch.nn.Identity())["AtoB"]
    assert r.structure_start > 1.5 * r.structure_floor_hi and r.structure_floor == pytest.approx(
        same["AtoB"].structure_floor)  # the same draws of the same target: the same floor
    back = Reading.from_metrics(r.metrics("AtoB"), "AtoB")  # as an eval row carries it
    assert (back.structure_floor, back.structure_floor_hi) == (r.structure_floor, r.structure_floor_hi)
    # What the app says is read on it: the untranslated sources are the whole way from the floor, and where the two
    # domains are one kind, the monitor cannot tell them apart.
    assert r.headline().structure and r.standing() == (pytest.approx(1.0), "100 % of the way left")
    assert same["AtoB"].standing()[1] == UNRESOLVED
    again = WMonitor(u8(base[:8], 40.0), held_b, **quick)  # a resumed run keeps the levels it measured
    again.load_state_dict(shifted.state_dict())
    assert again.structure_floor == shifted.structure_floor
    bare = WMonitor(held_a, held_b, **quick).measure(torch.nn.Identity(), torch.nn.Identity())["AtoB"]
    assert math.isnan(bare.structure_floor) and math.isnan(bare.structure_floor_hi)
    few = WMonitor(held_a, held_b, train_b=Pool(pool_b[:5]), **quick).measure(torch.nn.Identity(),
                                                                              torch.nn.Identity())["AtoB"]
    assert math.isnan(few.structure_floor)  # fewer training images than held-out sources: no sample of that size


def test_the_floor_draws_fewer_samples_where_the_held_out_sources_are_many(monkeypatch):
    """Each draw is as many images as the held-out sources; with many of those the draws are fewer (at least 3), so
    the floor does not decode a large folder."""
    import engine.wasserstein.monitor as mon

    class Counting(Pool):
        calls = 0

        def get(self, index: int) -> torch.Tensor:
            Counting.calls += 1
            return super().get(index)

    base = smooth_images(40, seed=7)
    held_a, held_b, pool = u8(base[:8]), u8(base[8:16]), Counting(u8(base[16:40]))
    for cap, draws in ((1000, mon.NULL_DRAWS), (40, 5), (16, 3)):
        monkeypatch.setattr(mon, "NULL_IMAGES", cap)
        Counting.calls = 0
        m = WMonitor(held_a, held_b, crop=32, first_steps=20, steps=5, train_b=pool)
        assert math.isfinite(m._structure_floor("A", "B")[0]) and Counting.calls == draws * len(held_a)


def test_the_real_side_holds_training_images_that_the_null_samples_never_draw(monkeypatch):
    """Readings are taken against the held-out target together with training images of the target (as many as
    leave ``NULL_POOL`` samples' worth for the null draws); the null samples are drawn from the other training
    images only. A state saved against another real side (a run from before) has its structure levels measured
    again; one saved against this one keeps them."""
    import engine.wasserstein.monitor as mon

    class Logged(Pool):
        def __init__(self, images):
            super().__init__(images)
            self.fetched: list[int] = []

        def get(self, index: int) -> torch.Tensor:
            self.fetched.append(index)
            return super().get(index)

    monkeypatch.setattr(mon, "REFERENCE_IMAGES", 10)
    base = smooth_images(56, seed=8)
    held_a, held_b, pool = u8(base[:6]), u8(base[6:12]), Logged(u8(base[12:56]))  # 44 training images of B
    m = WMonitor(held_a, held_b, crop=32, first_steps=20, steps=5, train_b=pool)
    assert m.reference_size("B") == 10 and m.reference_size("A") == 0  # no training images of A
    real, rest = m.reference("B")
    assert len(real) == (6 + 10) * m.crops_per_image and torch.equal(real[:len(m.crops["B"])], m.crops["B"])
    in_reference = set(pool.fetched)
    assert len(in_reference) == 10 and sorted(in_reference | {int(i) for i in rest}) == list(range(44))
    pool.fetched.clear()
    m._structure_floor("A", "B")
    assert pool.fetched and not in_reference & set(pool.fetched)  # the null samples: never a reference image
    small = WMonitor(held_a, held_b, crop=32, first_steps=20, steps=5, train_b=Pool(u8(base[12:32])))
    assert small.reference_size("B") == 2  # 20 images: 18 left for three samples of 6
    r = m.measure(torch.nn.Identity(), torch.nn.Identity())["AtoB"]
    assert math.isfinite(r.structure_floor) and r.structure_start == m.structure_start["AtoB"]
    state = m.state_dict()
    again = WMonitor(held_a, held_b, crop=32, first_steps=20, steps=5, train_b=Pool(pool.images))
    again.load_state_dict(state)
    assert again.structure_start == m.structure_start and again.structure_floor == m.structure_floor
    older = WMonitor(held_a, held_b, crop=32, first_steps=20, steps=5, train_b=Pool(pool.images))
    older.load_state_dict({k: v for k, v in state.items() if k != "structure_reference"})
    assert older.structure_start == {} and older.structure_floor == {}  # measured again at its next evaluation


def test_a_held_out_image_gives_as_many_crops_as_it_holds_or_enough_to_make_forty():
    """Four 32-px crops of a 64-px image; one of a 32-px image where there are 40 of them, four where there are
    ten (overlapping, to make 40 crops in all); never more than four."""
    big, small = u8(smooth_images(12, seed=9, size=64)), u8(smooth_images(40, seed=9, size=32))
    quick = dict(crop=32, first_steps=20, steps=5)
    assert WMonitor(big[:2], big[2:4], **quick).crops_per_image == 4
    assert WMonitor(small, small, **quick).crops_per_image == 1
    assert WMonitor(small[:10], small[10:20], **quick).crops_per_image == 4
    assert WMonitor(small[:20], small[20:], **quick).crops_per_image == 2
    m = WMonitor(small, small, crops_per_image=3, **quick)
    assert m.crops_per_image == 3 and len(m.crops["A"]) == 120


def test_the_headline_is_the_structure_reading_where_it_has_its_floor():
    """The share, the words and the caution are read on the structure reading once it has its floor of real target
    samples; a reading without that floor (an older run, a folder too small to draw from) is read on the critic's
    patch W, as before. A change of reading between two evaluations is no fall."""
    r = Reading(0.2, 0.18, 0.22, 3.0, 1.0, 0.1, 0.0, 0.0, 0.15, structure=0.9, structure_lo=0.85, structure_hi=0.95,
                structure_start=1.5, structure_floor=0.2, structure_floor_hi=0.3)
    assert r.headline().structure and r.remaining == pytest.approx(0.7 / 1.3)
    assert r.standing() == (pytest.approx(0.7 / 1.3), "54 % of the way left")
    assert r.doubt() == ""  # the critic's slope (3.0) is not the headline's
    older = Reading(0.2, 0.18, 0.22, 3.0, 1.0, 0.1, 0.0, 0.0, 0.15, structure=0.9, structure_lo=0.85,
                    structure_hi=0.95, structure_start=1.5)
    assert not older.headline().structure and older.remaining == pytest.approx(0.1 / 0.9)
    assert older.standing()[1] == "11 % of the way left" and "critic slope 3.00" in older.doubt()
    near = Reading(0.2, 0.18, 0.22, 1.0, 1.0, 0.1, 0.0, 0.0, 0.15, structure=0.33, structure_lo=0.32,
                   structure_hi=0.34, structure_start=1.5, structure_floor=0.28, structure_floor_hi=0.3)
    assert near.standing(previous=r) == (pytest.approx(math.nan, nan_ok=True), "still falling")
    assert near.standing(previous=older)[1] == "4 % of the way left"  # the critic's W before: not comparable


def test_the_remaining_distance_follows_a_partial_translation():
    base = smooth_images(12, seed=2)
    delta = 20.0
    m = monitor(u8(base), u8(base, delta))
    shift = 2 * delta / 255
    seen = [m.measure(Shift(f * shift), Shift(-f * shift))["AtoB"].remaining for f in (0.0, 0.5, 1.0)]
    assert seen[0] == pytest.approx(1.0, abs=0.05) and seen[1] == pytest.approx(0.5, abs=0.1) and abs(seen[2]) < 0.1


def test_the_critic_and_the_levels_survive_a_state_round_trip():
    base = smooth_images(8, seed=3)
    a, b = u8(base), u8(base, 16.0)
    m = monitor(a, b)
    m.measure(torch.nn.Identity(), torch.nn.Identity())
    again = monitor(a, b)
    again.load_state_dict(m.state_dict())
    assert again.levels == m.levels
    x = m.real["B"][:16]
    assert torch.equal(again.critics["AtoB"](x), m.critics["AtoB"](x))


# --- the best checkpoint ------------------------------------------------------------------------------

def reading(remaining: float, half_width: float = 0.01) -> dict[str, float]:
    ev = {}
    for way in ("AtoB", "BtoA"):
        ev.update({f"w_mon_{way}": remaining / 2, f"w_mon_remaining_{way}": remaining / 2, f"w_mon_start_{way}": 1.0,
                   f"w_mon_floor_{way}": 0.0, f"w_mon_lo_{way}": -half_width, f"w_mon_hi_{way}": half_width})
    return ev


def test_best_keeper_needs_a_gain_beyond_the_noise_and_names_the_plateau():
    keeper = BestKeeper(None, patience=3, stop=False)
    reports, best = [], {}
    for step, value in zip(range(100, 800, 100), (1.0, 0.6, 0.59, 0.65, 0.595, 0.585, 0.7)):
        reports += [r for r in keeper.observe(step, reading(value)) if isinstance(r, WarningReport)]
        best[step] = keeper.best_step
    # The summed half-width is 0.02. 0.59, 0.595 and 0.585 are within it of 0.6: not progress, so the plateau
    # comes 3 evaluations after step 200; but they are ties with the lowest, and a tie goes to the later step.
    # 0.65 and 0.7 are worse beyond the noise and move nothing.
    assert best == {100: 100, 200: 200, 300: 300, 400: 300, 500: 500, 600: 600, 700: 600}
    assert keeper.plateau and [r.code for r in reports] == ["plateau"] and reports[0].step == 500
    assert "step 500" in reports[0].message
    assert BestKeeper(None, 3, False).observe(100, {"w_mon_AtoB": 1.0}) == []  # no monitor readings, nothing to keep


def test_best_keeper_ranks_by_w_where_the_floor_reaches_the_start():
    """Held-out photos that differ among themselves more than the domains do put the floor above the start
    (sepia: start 3.80, floor 4.86): the remaining distance is undefined, yet a lower W is still a better step.
    Each direction has its own pick."""
    def photo_reading(w_ab: float, w_ba: float) -> dict[str, float]:
        ev = {}
        for way, w in (("AtoB", w_ab), ("BtoA", w_ba)):
            ev.update({f"w_mon_{way}": w, f"w_mon_start_{way}": 3.8, f"w_mon_floor_{way}": 4.86,
                       f"w_mon_remaining_{way}": math.nan, f"w_mon_lo_{way}": w - 0.05, f"w_mon_hi_{way}": w + 0.05})
        return ev

    keeper = BestKeeper(None, patience=3, stop=False)
    for step, (ab, ba) in zip((100, 200, 300), ((3.7, 3.7), (3.0, 3.2), (3.1, 3.1))):
        keeper.observe(step, photo_reading(ab, ba))
    # A→B: 3.1 at step 300 is worse than step 200's 3.0 beyond the half-width 0.05, so A→B keeps step 200; B→A: 3.1
    # is better than 3.2 by more than the half-width, so step 300. Summed over both directions the two steps tie
    # (6.2 / 3.8 each), which would have taken step 300's worse A→B.
    assert keeper.steps == {"AtoB": 200, "BtoA": 300} and keeper.best_step == 300
    assert keeper.describe() == "A→B of step 200, B→A of step 300"
    assert keeper.best_score == pytest.approx(6.2 / 3.8)  # the drift guard's summed W


def test_a_resnet_ranks_by_the_structure_reading_where_it_has_one():
    """The ResNet's pick goes by the structure reading over its identity level, with its interval; W says step 100
    is the best, the structure reading step 300 (a tie with step 200's within its half-width goes to the later)."""
    def ev(w: float, structure: float | None) -> dict[str, float]:
        out = {}
        for way in ("AtoB", "BtoA"):
            out.update({f"w_mon_{way}": w, f"w_mon_start_{way}": 1.0, f"w_mon_floor_{way}": 0.0,
                        f"w_mon_lo_{way}": w - 0.01, f"w_mon_hi_{way}": w + 0.01})
            if structure is not None:
                out.update({f"structure_{way}": structure, f"structure_lo_{way}": structure - 0.1,
                            f"structure_hi_{way}": structure + 0.1, f"structure_start_{way}": 2.0})
        return out

    readings = [(100, ev(0.2, 1.6)), (200, ev(0.5, 1.0)), (300, ev(0.6, 1.1))]
    resnet, per_pixel = BestKeeper(None, 100, False, by_structure=True), BestKeeper(None, 100, False)
    for step, e in readings:
        resnet.observe(step, dict(e))
        per_pixel.observe(step, dict(e))
    # structure / start: 0.8, 0.5, 0.55 with half-width 0.05: 0.55 ≤ 0.5 + 0.05 is a tie
    assert resnet.steps == {"AtoB": 300, "BtoA": 300} and per_pixel.steps == {"AtoB": 100, "BtoA": 100}
    assert resnet.way_score(readings[1][1], "AtoB") == pytest.approx((0.5, 0.05))
    # Without the structure reading's level and interval (an older run), the W ranks.
    old = BestKeeper(None, 100, False, by_structure=True)
    for step, w in ((100, 0.2), (200, 0.5)):
        old.observe(step, ev(w, None))
    assert old.steps == {"AtoB": 100, "BtoA": 100}


def test_best_pt_holds_each_directions_generator_from_its_own_pick(tmp_path, monkeypatch):
    """A→B is best at step 4, B→A at step 6: best.pt holds G (and its average) of step 4 and F of step 6."""
    cfg = tiny_config(max_steps=8, eval_every=2, save_every=100, plateau_evals=100)
    a, b = make_domains(tmp_path)
    values = iter([(1.0, 1.0), (0.2, 0.8), (0.9, 0.3), (0.9, 0.9)])  # (A→B, B→A) at steps 2, 4, 6, 8
    seen = {}

    def evaluate(self):
        ab, ba = next(values)
        seen[self.state.step] = {n: {k: v.clone() for k, v in getattr(self.state, n).state_dict().items()}
                                 for n in ("G", "F", "G_ema", "F_ema")}
        return {**{k: v for k, v in reading(2 * ab).items() if k.endswith("AtoB")},
                **{k: v for k, v in reading(2 * ba).items() if k.endswith("BtoA")}}

    monkeypatch.setattr(Evaluator, "evaluate", evaluate)
    trainer = Trainer.from_folders(cfg, a, b, run_dir=tmp_path / "run")
    reps = list(trainer.run())
    evals = [r.metrics for r in reps if isinstance(r, EvalReport)]
    assert [(m["w_mon_best_step_AtoB"], m["w_mon_best_step_BtoA"], m["w_mon_best_step"]) for m in evals] == [
        (2, 2, 2), (4, 4, 4), (4, 6, 6), (4, 6, 6)]
    ck = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert ck["steps"] == {"AtoB": 4, "BtoA": 6} and ck["step"] == 6
    for name, step in (("G", 4), ("G_ema", 4), ("F", 6), ("F_ema", 6)):
        for k, v in ck["models"][name].items():
            assert torch.equal(v, seen[step][name][k]), (name, k)
    assert not torch.equal(ck["models"]["G"][next(iter(ck["models"]["G"]))], seen[6]["G"][next(iter(seen[6]["G"]))])
    assert trainer.best.describe() == "A→B of step 4, B→A of step 6"


def test_a_run_saved_before_per_direction_picks_keeps_its_best_on_resume():
    """The old state kept one step and the summed W / start: both directions start at that step with half the sum,
    so a reading within the noise of it is a tie and one beyond it is not."""
    keeper = BestKeeper(None, patience=10, stop=False)
    keeper.load_state_dict({"best_step": 400, "best_score": 0.6, "mark": 0.6, "since_best": 2, "plateau": False,
                            "best_half_width": 0.02, "drift_step": None})
    assert keeper.steps == {"AtoB": 400, "BtoA": 400} and keeper.best_score == pytest.approx(0.6)
    keeper.observe(500, reading(0.7))  # 0.35 per direction, beyond 0.3 + 0.01: best.pt stays at step 400
    assert keeper.steps == {"AtoB": 400, "BtoA": 400} and keeper.since_best == 3
    keeper.observe(600, reading(0.5))
    assert keeper.steps == {"AtoB": 600, "BtoA": 600} and keeper.since_best == 0


def scripted(values):
    """An Evaluator.evaluate that returns monitor readings from ``values``, one per evaluation."""
    it = iter(values)
    return lambda self: reading(next(it))


def test_best_checkpoint_across_a_resume(tmp_path, monkeypatch):
    cfg = tiny_config(max_steps=12, eval_every=2, save_every=6, plateau_evals=100)
    a, b = make_domains(tmp_path)
    monkeypatch.setattr(Evaluator, "evaluate", scripted([1.0, 0.5, 0.8]))  # steps 2, 4, 6
    first = Trainer.from_folders(cfg, a, b, run_dir=tmp_path / "run")
    reps = list(first.run(stop_at=6))
    best = [r for r in reps if isinstance(r, CheckpointReport) and r.kind == "best"]
    assert [r.step for r in best] == [2, 4]
    best_pt = tmp_path / "run" / "checkpoints" / "best.pt"
    ck = load_checkpoint(best_pt)
    assert ck["step"] == 4 and set(ck["models"]) == {"G", "F", "G_ema", "F_ema"} and "optim" not in ck
    assert ck["steps"] == {"AtoB": 4, "BtoA": 4}
    assert [r.metrics["w_mon_best_step"] for r in reps if isinstance(r, EvalReport)] == [2, 4, 4]

    # Resumed, a reading worse than step 4's best keeps best.pt; a better one replaces it.
    monkeypatch.setattr(Evaluator, "evaluate", scripted([0.7, 0.2, 0.9]))  # steps 8, 10, 12
    second = Trainer.resume_run(tmp_path / "run", device="cpu")
    assert second.best.best_step == 4 and second.best.best_score == pytest.approx(0.5)
    # The resumed session kept both directions' weights from best.pt: a later pick of one keeps the other's.
    assert {way: step for way, (step, _) in second.best.kept.items()} == {"AtoB": 4, "BtoA": 4}
    reps = list(second.run())
    assert [r.step for r in reps if isinstance(r, CheckpointReport) and r.kind == "best"] == [10]
    assert isinstance(reps[-1], FinishedReport) and load_checkpoint(best_pt)["step"] == 10
    # best.pt translates like any checkpoint (the generator average, as previews show).
    model = TranslationModel.load(best_pt)
    assert model.step == 10 and model.directions == ["AtoB", "BtoA"]


def test_stop_on_plateau_ends_the_run_with_the_reason(tmp_path, monkeypatch):
    cfg = tiny_config(max_steps=40, eval_every=2, plateau_evals=2, stop_on_plateau=True, save_every=100)
    a, b = make_domains(tmp_path)
    monkeypatch.setattr(Evaluator, "evaluate", scripted([1.0, 0.5] + [0.5] * 30))
    reps = list(Trainer.from_folders(cfg, a, b, run_dir=tmp_path / "run").run())
    notice = [r for r in reps if isinstance(r, WarningReport) and r.code == "plateau"]
    # Steps 6 and 8 tie with step 4 (no progress: the plateau), and best.pt follows the ties to step 8.
    assert len(notice) == 1 and notice[0].severity == "info" and "step 8" in notice[0].message
    assert reps[-1].reason == "plateau" and reps[-1].step == 8 and reps[-1].checkpoint


# --- the drift guard ------------------------------------------------------------------------------------------

def test_drift_guard_fires_at_a_rise_beyond_the_noise_from_a_low_best():
    """Best 0.5 (summed half-width 0.02): a drift is a reading whose lower end is above 1.2 × (0.5 + 0.02) = 0.624;
    the snapshot kept is the best step's."""
    assert (DRIFT_RISE, DRIFT_BELOW) == (pytest.approx(1.2), pytest.approx(1.0))
    snaps = iter(range(100))
    keeper = BestKeeper(None, patience=100, stop=False, snapshot=lambda way: next(snaps), guard=True)
    codes, said = {}, []
    for step, value in zip(range(100, 700, 100), (1.5, 0.5, 0.6, 0.64, 0.65, 1.6)):
        notes = [r for r in keeper.observe(step, reading(value)) if isinstance(r, WarningReport)]
        codes[step], said = [r.code for r in notes], said + notes
        if step == 200:
            assert keeper.kept == {"AtoB": (200, 2), "BtoA": (200, 3)}  # the second pair of snapshots: the best
    # 0.64 − 0.02 = 0.62 is below 0.624; 0.65 − 0.02 = 0.63 is above: a drift, said once.
    assert codes == {100: [], 200: [], 300: [], 400: [], 500: ["drift"], 600: []}
    assert keeper.drift_step == 500 and keeper.best_step == 200 and keeper.kept == {"AtoB": (200, 2), "BtoA": (200, 3)}
    assert "1.3× what it was at its best" in said[0].message
    assert "Restored the best checkpoint's generators (step 200)" in said[0].hint


def test_drift_guard_needs_a_snapshot_and_a_reading_beyond_the_noise():
    plain = BestKeeper(None, patience=100, stop=False, snapshot=lambda way: "kept")  # the guard off (the ResNet)
    for step, value in ((100, 0.5), (200, 1.9)):
        assert [r for r in plain.observe(step, reading(value)) if r.code == "drift"] == []
    assert plain.drift_step is None
    noisy = BestKeeper(None, patience=100, stop=False, snapshot=lambda way: "kept", guard=True)
    noisy.observe(100, reading(0.5, half_width=0.1))  # summed half-width 0.2
    noisy.observe(200, reading(1.0, half_width=0.1))  # 2 × the best, but 1.0 − 0.2 < 1.2 × (0.5 + 0.2)
    assert noisy.drift_step is None
    noisy.observe(300, reading(1.1, half_width=0.1))
    assert noisy.drift_step == 300
    small = BestKeeper(None, patience=100, stop=False, snapshot=lambda way: "kept", guard=True)  # a small change
    small.observe(100, reading(1.2))
    small.observe(200, reading(1.99))  # creeping up to the sources' 2 is not a drift
    assert small.drift_step is None


@pytest.mark.parametrize("family,guarded", [("colour", True), ("local", True), ("resnet", False)])
def test_a_drift_ends_a_per_pixel_run_at_the_best_steps_generators(tmp_path, monkeypatch, family, guarded):
    cfg = tiny_config(max_steps=16, eval_every=2, save_every=100, plateau_evals=100, netG=family)
    a, b = make_domains(tmp_path)
    monkeypatch.setattr(Evaluator, "evaluate", scripted([1.0, 0.5, 0.55, 1.3] + [1.3] * 10))  # steps 2, 4, 6, 8, …
    trainer = Trainer.from_folders(cfg, a, b, run_dir=tmp_path / "run")
    reps = list(trainer.run())
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best["step"] == 4
    last_preview = [r for r in reps if isinstance(r, PreviewReport)][-1]
    if not guarded:
        assert reps[-1].reason == "completed" and reps[-1].step == 16
        assert not [r for r in reps if isinstance(r, WarningReport) and r.code == "drift"]
        assert last_preview.restored_from is None and last_preview.title == "step 16"
        return
    drift = [r for r in reps if isinstance(r, WarningReport) and r.code == "drift"]
    assert len(drift) == 1 and drift[0].step == 8 and "2.6× what it was at its best" in drift[0].message
    assert "(step 4)" in drift[0].hint
    assert reps[-1].reason == "drifted" and reps[-1].step == 8 and reps[-1].checkpoint
    # Every generator, the averages included, is back at step 4's weights, and the last checkpoint holds them.
    latest = load_checkpoint(reps[-1].checkpoint)
    for name, net in zip(("G", "F", "G_ema", "F_ema"), trainer.state.generators):
        for k, v in net.state_dict().items():
            assert torch.equal(v, best["models"][name][k]), (name, k)
            assert torch.equal(v, latest["models"][name][k]), (name, k)
    # The last preview shows what was restored, and says whose generators made it.
    assert last_preview.step == 8 and last_preview.restored_from == "step 4"
    assert last_preview.title == "step 8 · the generators of step 4, restored"
    for key, images in trainer.evaluator.preview().items():
        assert (last_preview.images[key] == images).all(), key


def test_restore_on_drift_off_trains_to_the_end(tmp_path, monkeypatch):
    cfg = tiny_config(max_steps=10, eval_every=2, save_every=100, plateau_evals=100, netG="colour",
                      restore_on_drift=False)
    a, b = make_domains(tmp_path)
    monkeypatch.setattr(Evaluator, "evaluate", scripted([1.0, 0.5, 1.5, 1.5, 1.5]))
    reps = list(Trainer.from_folders(cfg, a, b, run_dir=tmp_path / "run").run())
    assert reps[-1].reason == "completed" and reps[-1].step == 10


# --- the evaluations' share of the time ------------------------------------------------------------------------

def test_an_evaluation_is_put_off_until_it_costs_at_most_its_share(tmp_path):
    a, b = make_domains(tmp_path)
    reporter = Trainer.from_folders(tiny_config(eval_every=10, eval_share=0.1), a, b).reporter
    reporter._eval_cost, reporter._eval_end = 5.0, 100.0  # the last evaluation took 5 s and ended at 100 s
    assert not reporter.eval_due(5, 200.0)  # not an eval_every step: nothing pending
    assert not reporter.eval_due(10, 140.0)  # due by its steps, but 40 s of training < 9 × 5 s
    assert not reporter.eval_due(11, 144.9)
    assert reporter.eval_due(12, 145.0)  # still pending from step 10: 45 s since, 5 s is 10 % of 50
    every = Trainer.from_folders(tiny_config(eval_every=10, eval_share=1.0), a, b).reporter
    every._eval_cost, every._eval_end = 5.0, 100.0
    assert not every.eval_due(9, 100.0) and every.eval_due(10, 100.0)  # share 1: exactly every eval_every


def test_the_first_evaluation_does_not_count_as_the_cost(tmp_path, monkeypatch):
    """The first evaluation also measures the monitor's reference levels, once: the second comes at eval_every
    regardless; after it, its cost (0.5 s here) puts the next off past the run's few millisecond steps."""
    def slow(self):
        time.sleep(0.5)
        return reading(1.0)

    monkeypatch.setattr(Evaluator, "evaluate", slow)
    a, b = make_domains(tmp_path)
    cfg = tiny_config(max_steps=8, eval_every=2, eval_share=0.1, save_every=100, plateau_evals=100)
    reps = list(Trainer.from_folders(cfg, a, b).run())
    assert [r.step for r in reps if isinstance(r, EvalReport)] == [2, 4]
