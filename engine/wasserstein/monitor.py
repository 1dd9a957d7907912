"""The Wasserstein monitor: an independent, held-out estimate of how far translations still are from their target.

For each direction (A→B: G's translations of held-out A against held-out real B; B→A the mirror
image) a critic of its own — never the training discriminator, never touching the generators —
estimates W1 between **patches**: fixed crops of the held-out images at the training scale, cut
into ``patch``-px squares (8 px by default, flattened). W1 is then a distance between patch
distributions, what a PatchGAN judges and what a person sees as colour and fine texture.

The estimator is the one that passed the closed-form tests (``estimate_w1``: a 2×64 MLP critic,
one-sided penalty, λ = 100), cross-fitted: the critic is fitted on half of the patches and the dual E_real f − E_fake f
is reported on the other half, so fitting cannot inflate it. A percentile bootstrap over the
reported half gives a confidence interval, and the critic's gradient norm at held-out interpolates
says whether the estimate can be trusted (a 1-Lipschitz critic that found the transport direction
has ‖∇f‖ ≈ 1). The critic is warm-started from the last evaluation, so each costs a few hundred
small steps.

Two reference levels, measured the same way once, give the number a meaning:

* **start**: W1(source, target) itself, the distance the identity translation leaves;
* **floor**: W1 between two halves (by image) of the real held-out target: what the estimator
  reports for two samples of one distribution.

``remaining = (W − floor) / (start − floor)``: 1 at the identity, 0 when translations are as
close to the target as the target is to itself. Critic-free cross-checks on the same patches come from POT:
the sliced Wasserstein distance, and the exact empirical W1 (``ot.emd2``) of patches downscaled to 4×4 px.

A third, ``structure``, sees blur and invented detail as well as colour: the sliced W1 of patches of three
Laplacian bands (``engine.wasserstein.structure``, the yardstick the ``auto`` search ranks generator families by),
of the translated crops against the real target's, with a bootstrap 95 % interval over the crops
(``structure_lo``/``structure_hi``) and its own reference levels, measured once: ``structure_start``, the
untranslated sources' reading, and ``structure_floor``, the null level at the sizes compared: samples of the target
domain's *training* images, as many as the held-out sources, read the same way (``NULL_DRAWS`` of them; the floor
is their median, ``structure_floor_hi`` their mean + 2 standard deviations, the top of what a real sample of that
size reads). The target side is real data, so training images may serve there; translations still come only from
held-out sources. The real side every one of these is read against is the held-out target together with up to
``REFERENCE_IMAGES`` training images of the target (the null samples are drawn from the others): against the
held-out target alone, a few dozen images, which images a sample holds outweighed the change itself, and on
photographs translated sources read closer to real images than real images did. The larger side has a bias of its
own where the held-out sources are few: their content against the whole domain's (docs/wasserstein.md, the colour
maps' table), which is why the family search does not take it. ``best.pt`` ranks a ResNet's evaluations by it
(``BestKeeper``).

What the app and the CLI show (``Reading.standing``: the share of the way left, or words) is read on the structure
reading where it has its floor (``Reading.headline``), on the critic's W otherwise (older runs, no training images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import ot
import torch
import torch.nn.functional as Fn

from engine.wasserstein.critic import MLPCritic, W1Estimate, estimate_w1
from engine.wasserstein.structure import READING, RealSide, patches_of, structure_distances

__all__ = ["Reading", "Level", "WMonitor", "patches_of", "MONITOR_KEYS", "WAYS", "TRUSTED_SLOPE", "NEAR_DONE",
           "AT_FLOOR", "UNRESOLVED", "NULL_DRAWS", "REFERENCE_IMAGES", "Images"]

WAYS = (("AtoB", "A", "B"), ("BtoA", "B", "A"))   # direction, source domain, target domain
TRUSTED_SLOPE = (0.5, 1.5)  # the critic's mean gradient norm within which its estimate can be trusted
MONITOR_KEYS = ("w_mon", "w_mon_lo", "w_mon_hi", "w_mon_grad", "w_mon_start", "w_mon_floor", "w_mon_remaining",
                "sliced", "emd", "w_mon_floor_hi", "structure", "structure_lo", "structure_hi", "structure_start",
                "structure_floor", "structure_floor_hi")
STRUCTURE_BOOT = 12  # bootstrap resamples of the held-out crops for the structure reading's interval
NULL_DRAWS = 8  # samples of the target's training images that give the structure reading its floor …
NULL_IMAGES = 160  # … fewer (at least 3) where that would decode more images than this: many held-out sources
MAX_CROPS = 4  # crops of a held-out image: as many as it holds side by side (a 128-px image four 64-px crops) …
MIN_CROPS = 40  # … or more, overlapping, where that makes fewer than this in all. Overlapping crops of a small image
#                 add patches but little else, and a ResNet's translations are most of an evaluation's time: the
#                 cpu-quick ResNet's 72-px images hold one 64-px crop, so 10 held out give 4 crops each, 40 one
REFERENCE_IMAGES = 100  # training images of the target beside the held-out target: the structure reading's real side …
NULL_POOL = 3  # … as many as leave this many held-out sources' worth of others for the null samples
NEAR_DONE = 0.05  # a share of the way left that reads as "done": shown only once the reading has stopped falling
AT_FLOOR = "the monitor can no longer tell translations from real images at this size"
UNRESOLVED = "the monitor cannot tell the two domains apart at this size"


@dataclass(frozen=True)
class Level:
    """One distance with its interval and reference levels: what the headline of the monitor is read on."""

    value: float
    lo: float
    hi: float
    start: float     # the untranslated sources' reading
    floor: float     # what real target images read
    floor_hi: float  # the top of that (nan: not measured)
    structure: bool  # the multi-scale structure reading (else the critic's patch W)

    @property
    def remaining(self) -> float:
        span = self.start - self.floor
        return (self.value - self.floor) / span if span > 0 else math.nan


@dataclass(frozen=True)
class Reading:
    """One direction's estimate and its reference levels."""

    w: float            # E_target f − E_translated f on the held-out half of the patches
    lo: float           # bootstrap 95 % interval of w
    hi: float
    grad_norm: float    # mean ‖∇f‖ at held-out interpolates; ≈ 1 when the estimate can be trusted
    start: float        # W1(source patches, target patches): the identity translation's distance
    floor: float        # W1 between two halves of the real target: the estimator's floor
    sliced: float       # critic-free: sliced W1 (POT) on the same patches
    emd: float          # critic-free: exact empirical W1 (POT emd2) of patches downscaled to 4×4
    floor_hi: float = math.nan  # the top of the floor's 95 % interval (nan: not measured, as in older runs)
    structure: float = math.nan  # critic-free and multi-scale: ``structure_distances`` of the translated crops
    structure_lo: float = math.nan     # its bootstrap 95 % interval (nan in older runs)
    structure_hi: float = math.nan
    structure_start: float = math.nan  # the same reading of the untranslated sources: the identity's level
    structure_floor: float = math.nan     # real target samples of the sources' size, read the same way (median)
    structure_floor_hi: float = math.nan  # the top of what such samples read (mean + 2 sd)

    def headline(self) -> Level:
        """The distance the app and the CLI speak of: the structure reading where it has its floor (samples of real
        target images of the sources' size: ``WMonitor``), else the critic's patch W. At 8 px and the training
        scale the patch W reaches its floor while a ResNet's translations are still improving (on the demo under
        `paper`, from step 148 of 353 on, at 18.6 dB of the 19.5 it reached), and its floor, two halves of the
        held-out target, is half the size compared; the multi-scale reading sees blur and invented detail, and its
        floor is real images read as the translations are."""
        if all(math.isfinite(v) for v in (self.structure, self.structure_start, self.structure_floor)):
            return Level(self.structure, self.structure_lo, self.structure_hi, self.structure_start,
                         self.structure_floor, self.structure_floor_hi, True)
        return Level(self.w, self.lo, self.hi, self.start, self.floor, self.floor_hi, False)

    @property
    def remaining(self) -> float:
        """(reading − floor) / (start − floor) of the headline: 1 at the identity, 0 as close to the target as real
        target images are."""
        return self.headline().remaining

    def doubt(self) -> str:
        """Why the headline cannot be trusted, in words for the user; "" when it can: a critic's slope is near 1
        (``TRUSTED_SLOPE``; the structure reading has no critic) and the domains are told apart at all (the span
        from start to floor wider than the reading's interval). The app's caution and the tests read this one rule."""
        h = self.headline()
        if not h.structure and not TRUSTED_SLOPE[0] <= self.grad_norm <= TRUSTED_SLOPE[1]:
            return f"critic slope {self.grad_norm:.2f}, not {TRUSTED_SLOPE[0]}–{TRUSTED_SLOPE[1]}"
        if not h.start - h.floor > h.hi - h.lo:
            return "the domains are within its noise"
        return ""

    @property
    def trustworthy(self) -> bool:
        return not self.doubt()

    def standing(self, previous: "Reading | None" = None) -> tuple[float, str]:
        """(the share of the way left, or nan; what to tell the user) — the one rule the app and the CLI show.

        Read on the ``headline``. The share is shown only where it means something: the floor lies below the start
        beyond the floor's interval and the reading's (else ``UNRESOLVED``, with whether the translations read
        closer to the target than the untranslated images or farther, where that is beyond the reading's
        interval); the reading's interval is above the floor's (else ``AT_FLOOR``, in words, not a number that
        reads "done"); and it is above ``NEAR_DONE`` unless the reading has stopped falling (``previous``, the
        evaluation before, is not above this one beyond both intervals)."""
        h = self.headline()
        floor_hi = h.floor_hi if math.isfinite(h.floor_hi) else h.floor
        if not (h.start > floor_hi and h.start - h.floor > h.hi - h.lo):
            return math.nan, UNRESOLVED + _beside_start(h)
        if h.lo <= floor_hi:
            return math.nan, AT_FLOOR
        share = h.remaining
        before = previous.headline() if previous is not None else None
        falling = before is not None and before.structure == h.structure and before.lo > h.hi
        if share <= NEAR_DONE and falling:
            return math.nan, "still falling"
        return share, f"{max(0.0, share) * 100:.0f} % of the way left"

    def metrics(self, way: str) -> dict[str, float]:
        values = (self.w, self.lo, self.hi, self.grad_norm, self.start, self.floor, self.remaining, self.sliced,
                  self.emd, self.floor_hi, self.structure, self.structure_lo, self.structure_hi, self.structure_start,
                  self.structure_floor, self.structure_floor_hi)
        return {f"{k}_{way}": float(v) for k, v in zip(MONITOR_KEYS, values)}

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, float], way: str) -> "Reading | None":
        """The reading ``metrics(way)`` wrote (an evaluation's row, a report's metrics); None without one."""
        if f"w_mon_{way}" not in metrics:
            return None
        get = lambda k: float(metrics.get(f"{k}_{way}", math.nan))  # noqa: E731
        return cls(get("w_mon"), get("w_mon_lo"), get("w_mon_hi"), get("w_mon_grad"), get("w_mon_start"),
                   get("w_mon_floor"), get("sliced"), get("emd"), get("w_mon_floor_hi"),
                   get("structure"), get("structure_lo"), get("structure_hi"), get("structure_start"),
                   get("structure_floor"), get("structure_floor_hi"))


def _beside_start(h: Level) -> str:
    """Where no share can be given, what the reading still says: whether the translations read closer to the target
    than the untranslated sources, or farther, beyond the reading's interval (the same sources at every
    evaluation, so this is resolved where the floor is not); "" within it."""
    if h.hi < h.start:
        return f"; translations closer than the untranslated images ({h.value / h.start:.2f} ×)"
    if h.lo > h.start:
        return f"; translations farther than the untranslated images ({h.value / h.start:.2f} ×)"
    return ""


def _crops(images: Sequence[torch.Tensor], crop: int, per_image: int, seed: int) -> torch.Tensor:
    """``per_image`` seeded crop × crop squares of each uint8 (3, h, w) image, as float (N, 3, crop, crop)
    in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for img in images:
        h, w = img.shape[-2:]
        for _ in range(per_image):
            y = int(torch.randint(0, h - crop + 1, (), generator=g))
            x = int(torch.randint(0, w - crop + 1, (), generator=g))
            out.append(img[:, y:y + crop, x:x + crop])
    return torch.stack(out).float().div_(127.5).sub_(1.0)


class Images(Protocol):
    """A domain's training images, as the monitor draws from them: ``len`` and ``get(i)`` → uint8 (3, h, w)."""

    def __len__(self) -> int: ...

    def get(self, index: int) -> torch.Tensor: ...


class WMonitor:
    """The monitor of one run. ``measure(G, F)`` → {"AtoB": Reading, "BtoA": Reading}.

    ``held_a``/``held_b``: the held-out images (uint8 (3, h, w), never trained on); ``crop``: the
    training crop size, the scale the generators work at; ``train_a``/``train_b``: the training images, from which
    the structure reading's floor draws its samples of real target images (without them it has none). Everything
    random is seeded, so the same crops and patches, and the same fitting/reporting halves, are used at every
    evaluation: what changes between two readings is the generators.
    """

    def __init__(self, held_a: Sequence[torch.Tensor], held_b: Sequence[torch.Tensor], *, crop: int, patch: int = 8,
                 stride: int = 4, crops_per_image: int | None = None, steps: int = 150, first_steps: int = 600,
                 lambda_lp: float = 100.0, batch_size: int = 64, seed: int = 0, device: torch.device | str = "cpu",
                 train_a: Images | None = None, train_b: Images | None = None):
        if len(held_a) < 2 or len(held_b) < 2:
            raise ValueError("the monitor needs at least two held-out images per domain")
        self.device = torch.device(device)
        if crops_per_image is None:  # as many as the images hold side by side, or to make MIN_CROPS; at most MAX_CROPS
            area = float(np.median([h.shape[-2] * h.shape[-1] for h in (*held_a, *held_b)]))
            fewest = math.ceil(MIN_CROPS / min(len(held_a), len(held_b)))
            crops_per_image = min(MAX_CROPS, max(1, round(area / crop ** 2), fewest))
        self.patch, self.stride, self.crop, self.crops_per_image = patch, stride, crop, crops_per_image
        self.train = {"A": train_a, "B": train_b}
        self.steps, self.first_steps, self.lambda_lp, self.batch_size, self.seed = (steps, first_steps, lambda_lp,
                                                                                     batch_size, seed)
        self.crops = {"A": _crops(held_a, crop, crops_per_image, seed),
                      "B": _crops(held_b, crop, crops_per_image, seed + 1)}
        self.real = {d: patches_of(c, patch, stride) for d, c in self.crops.items()}
        self._per_image = {d: len(self.real[d]) // len(h) for d, h in (("A", held_a), ("B", held_b))}
        self.critics: dict[str, torch.nn.Module | None] = {way: None for way, _, _ in WAYS}
        self.levels: dict[str, tuple[float, ...]] = {}  # way → (start, floor, the top of the floor's interval)
        self.structure_start: dict[str, float] = {}  # way → the structure reading of the untranslated sources
        self.structure_floor: dict[str, tuple[float, float]] = {}  # way → (floor, the top of real samples' readings)
        self._reference: dict[str, tuple[torch.Tensor, np.ndarray]] = {}  # domain → (real crops, null pool)
        self._real_side: dict[str, RealSide] = {}  # domain → its real crops prepared for the structure reading

    # --- estimation ---------------------------------------------------------------------------------
    def _estimate(self, target: torch.Tensor, other: torch.Tensor, critic=None, steps: int | None = None) -> W1Estimate:
        return estimate_w1(target, other, "lp", steps=steps or self.first_steps, lambda_gp=self.lambda_lp,
                           batch_size=self.batch_size, heldout_fraction=0.5, seed=self.seed, critic=critic)

    def _halves(self, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The real patches of a domain in two halves by image (even and odd held-out crops' images)."""
        per = self._per_image[domain]
        p = self.real[domain].reshape(-1, per, self.real[domain].shape[1])
        return p[0::2].flatten(0, 1), p[1::2].flatten(0, 1)

    def _reference_levels(self) -> None:
        for way, source, target in WAYS:
            start = self._estimate(self.real[target], self.real[source]).w
            floor = self._estimate(*self._halves(target))
            self.levels[way] = (start, floor.w, floor.bootstrap(seed=self.seed)[1])

    @torch.no_grad()
    def translate_crops(self, net: torch.nn.Module, domain: str) -> torch.Tensor:
        """``net`` applied to the held-out crops of ``domain``, in eval mode, on the CPU, in [-1, 1]."""
        was = net.training
        net.eval()
        try:
            out = torch.cat([net(c.to(self.device)).float().cpu() for c in self.crops[domain].split(32)])
        finally:
            net.train(was)
        return out.clamp(-1, 1)

    def measure(self, G: torch.nn.Module, F: torch.nn.Module) -> dict[str, Reading]:
        """Both directions' readings for the current generators (G: A→B, F: B→A)."""
        if not self.levels:
            self._reference_levels()
        out = {}
        for (way, source, target), net in zip(WAYS, (G, F)):
            crops = self.translate_crops(net, source)
            fake = patches_of(crops, self.patch, self.stride)
            est = self._estimate(self.real[target], fake, self.critics[way],
                                 self.steps if self.critics[way] is not None else self.first_steps)
            self.critics[way] = est.critic
            lo, hi = est.bootstrap(seed=self.seed)
            start, floor, floor_hi = (*self.levels[way], math.nan)[:3]  # older runs kept no floor interval
            if way not in self.structure_start:  # measured once, like the levels (and again after an old resume)
                self.structure_start[way] = self._structure(target, self.crops[source])[0]
            if way not in self.structure_floor:
                self.structure_floor[way] = self._structure_floor(source, target)
            out[way] = Reading(est.w, lo, hi, est.grad_norm, start, floor,
                               *cross_checks(self.real[target], fake, self.seed), floor_hi,
                               *self._structure(target, crops), self.structure_start[way], *self.structure_floor[way])
        return out

    def _structure(self, target: str, crops: torch.Tensor) -> tuple[float, float, float]:
        """The multi-scale, critic-free distance of ``crops`` from the real target's, with its bootstrap 95 %
        interval (all nan where the crop does not halve twice). The resamples are seeded, so every evaluation
        resamples the same crops."""
        if crops.shape[-1] % 4 or crops.shape[-2] % 4:
            return math.nan, math.nan, math.nan
        d, reps = structure_distances(self.real_side(target), {"x": crops}, n_boot=STRUCTURE_BOOT,
                                      combine=READING)["x"]
        lo, hi = (float(v) for v in np.quantile(reps, [0.025, 0.975]))
        return float(d), min(lo, d), max(hi, d)

    def reference_size(self, domain: str) -> int:
        """How many of ``domain``'s training images join its held-out images on the real side of the structure
        reading: ``REFERENCE_IMAGES``, or fewer where the null samples (each as many as the held-out sources of the
        other domain) would otherwise have fewer than ``NULL_POOL`` samples' worth of images to be drawn from."""
        pool, sources = self.train[domain], self._held_out("B" if domain == "A" else "A")
        if pool is None:
            return 0
        return max(0, min(REFERENCE_IMAGES, len(pool) - NULL_POOL * sources))

    def _held_out(self, domain: str) -> int:
        return len(self.crops[domain]) // self.crops_per_image

    def reference(self, domain: str) -> tuple[torch.Tensor, np.ndarray]:
        """(the real crops of ``domain`` that readings are taken against, the indices of its training images left for
        the null samples): the held-out crops and those of ``reference_size`` seeded training images. Made once."""
        if domain not in self._reference:
            pool, size = self.train[domain], self.reference_size(domain)
            order = np.random.default_rng([self.seed, 37, ord(domain)]).permutation(len(pool) if pool else 0)
            crops = self.crops[domain]
            if size:
                extra = _crops([pool.get(int(i)) for i in order[:size]], self.crop, self.crops_per_image,
                               self.seed + 50)
                crops = torch.cat([crops, extra])
            self._reference[domain] = (crops, order[size:])
        return self._reference[domain]

    def real_side(self, domain: str) -> RealSide:
        """``reference(domain)``'s crops prepared for the structure reading (with ``STRUCTURE_BOOT`` resamples), once:
        every evaluation of a run, its start and its floor's null samples are read against the same draws."""
        if domain not in self._real_side:
            self._real_side[domain] = RealSide(self.reference(domain)[0], seed=self.seed, n_boot=STRUCTURE_BOOT)
        return self._real_side[domain]

    def _structure_floor(self, source: str, target: str) -> tuple[float, float]:
        """(median, mean + 2 sd) of the structure reading of ``NULL_DRAWS`` seeded samples of the target's training
        images outside the reference (fewer where they would hold more than ``NULL_IMAGES`` in all), each as many
        images as the held-out sources and cropped alike: what real target images read at the size compared. Two
        halves of the held-out target would be half that size, and read farther apart. nan where there are no
        training images to draw from, too few of them, or the crop does not halve twice."""
        n = self._held_out(source)
        if self.train[target] is None or self.crop % 4:
            return math.nan, math.nan
        pool = self.reference(target)[1]
        if len(pool) < n:
            return math.nan, math.nan
        images = self.train[target]
        rng = np.random.default_rng([self.seed, 31, ord(target)])
        count = max(3, min(NULL_DRAWS, NULL_IMAGES // n))
        draws = {str(k): _crops([images.get(int(i)) for i in rng.choice(pool, size=n, replace=False)], self.crop,
                                self.crops_per_image, self.seed + 100 + k) for k in range(count)}
        read = structure_distances(self.real_side(target), draws, n_boot=0, combine=READING)
        d = np.array([v for v, _ in read.values()])
        return float(np.median(d)), float(d.mean() + 2 * d.std(ddof=1))

    # --- resume -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"levels": {k: list(v) for k, v in self.levels.items()}, "structure_start": dict(self.structure_start),
                "structure_floor": {k: list(v) for k, v in self.structure_floor.items()},
                "structure_reference": {d: self.reference_size(d) for d in ("A", "B")},
                "critics": {k: c.state_dict() for k, c in self.critics.items() if c is not None}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.levels = {k: tuple(float(x) for x in v[:3]) for k, v in state.get("levels", {}).items()}
        # The structure reading's levels hold only against the real side they were read on: a run saved before the
        # reference held training images (or with other folders) measures them again.
        if state.get("structure_reference") == {d: self.reference_size(d) for d in ("A", "B")}:
            self.structure_start = {k: float(v) for k, v in state.get("structure_start", {}).items()}
            self.structure_floor = {k: (float(v[0]), float(v[1])) for k, v in state.get("structure_floor", {}).items()}
        for way, sd in state.get("critics", {}).items():
            critic = MLPCritic(self.real["A"].shape[1])
            critic.load_state_dict(sd)
            self.critics[way] = critic.eval().requires_grad_(False)


def cross_checks(real: torch.Tensor, fake: torch.Tensor, seed: int, n_sliced: int = 2000, n_emd: int = 300
                 ) -> tuple[float, float]:
    """(sliced W1, exact empirical W1 of patches downscaled to 4×4 px) between two sets of flattened
    3 × s × s patches, by POT."""
    rng = np.random.default_rng(seed)
    pick = lambda t, n: t[rng.choice(len(t), size=min(n, len(t)), replace=False)]  # noqa: E731
    sliced = float(ot.sliced_wasserstein_distance(pick(real, n_sliced).double().numpy(),
                                                  pick(fake, n_sliced).double().numpy(), n_projections=64, p=1,
                                                  seed=seed))
    side = int(round(math.sqrt(real.shape[1] // 3)))
    small = lambda t: Fn.adaptive_avg_pool2d(t.reshape(-1, 3, side, side), 4).flatten(1).double().numpy()  # noqa: E731
    a, b = small(pick(real, n_emd)), small(pick(fake, n_emd))
    emd = float(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), ot.dist(a, b, metric="euclidean")))
    return sliced, emd
