"""The six groups of hyperparameters as frozen dataclasses, each field with the prose the form and the CLI show.

A field's metadata (``_f``): a label, help text, a numeric range or (through its ``Literal`` type) a set
of choices, ``shown_for`` (the ``gan_mode`` values it applies to) and ``budget`` (the training budget it
gives the run's length in). ``engine.config.specs`` reads it into one ``FieldSpec`` per field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

WASSERSTEIN_MODES = ("wgan-clip", "wgan-gp")
# The generator families that map each pixel (with its neighbourhood, for local) and keep the picture's structure by
# construction: they have their own cycle weight and fast start, and the drift guard watches them.
PER_PIXEL_FAMILIES = ("colour", "local")
# How a run's length is given, each winning over the ones before it: minutes (when set), else steps
# (when set), else epochs. See ``budget_of``.
BUDGETS = ("epochs", "steps", "minutes")


def _f(default: Any, label: str, help: str, *, lo: float | None = None, hi: float | None = None,
       widget: str | None = None, advanced: bool = False, unit: str = "",
       shown_for: tuple[str, ...] | None = None, budget: str | None = None) -> Any:
    """A dataclass field with the metadata the form, the CLI and validation read.

    ``shown_for``: the ``gan_mode`` values the field means something for (None: all of them).
    ``budget``: the training budget (one of ``BUDGETS``) the field gives the run's length in (None: none).
    """
    return field(default=default, metadata={
        "label": label, "help": help, "min": lo, "max": hi, "widget": widget,
        "advanced": advanced, "unit": unit, "shown_for": shown_for, "budget": budget,
    })


@dataclass(frozen=True)
class ModelConfig:
    netG: Literal["auto", "colour", "local", "resnet"] = _f(
        "resnet", "Generator family",
        "What kind of change the generators can learn. colour: a per-pixel colour map (grades, tone curves, "
        "channel mixes, greyscale); nothing that depends on a pixel's neighbours; exact at any size, exportable as "
        "a .cube LUT. local: the colour map plus a full-resolution detail path that sees 12 px each way "
        "(sharpening, small blurs, edge and local-contrast effects); no shapes or textures wider than that. "
        "resnet: the paper's ResNet, which can learn any change (textures, objects) but redraws every pixel, so "
        "detail is lost until it is relearnt. auto: try the three on your images for a small share of the "
        "budget, keep the one whose held-out translations come closest to the target in colour, structure and "
        "detail, and train it for the rest.")
    map_start: Literal["identity", "random"] = _f(
        "identity", "Colour/local start",
        "How the colour and local maps begin. identity: fitted to pass every colour through (about a second "
        "before training), so a run starts from your untouched pictures and changes only what the folders ask "
        "for. random: a random colour map, as the ResNet starts; it may settle on swapped hues, and about half "
        "of such draws begin by reversing light and dark.", advanced=True)
    map_order: Literal["auto", "rgb", "rbg", "grb", "gbr", "brg", "bgr"] = _f(
        "auto", "Colour/local channel order",
        "The channel order the colour and local maps start from, with the identity start: the letters say where "
        "each output channel comes from (brg: red from blue, green from red, blue from green); the way back starts "
        "at the inverse order. rgb: untouched. auto: read from the two folders' colours before training (a few "
        "seconds): another order is taken only where it brings the source's colours much closer to the target's "
        "than the untouched ones (false colour, swapped channels), since from the untouched start such a run "
        "settles on the nearest wrong hues.", advanced=True)
    ngf: int = _f(64, "Generator width (ngf)", "Filters in the generator's first conv layer.", lo=4, hi=256)
    n_blocks: int = _f(
        9, "Residual blocks", "Residual blocks in the generator: 9 for 256 px, 6 for 128 px and below.",
        lo=1, hi=24)
    upsample: Literal["transpose", "resize"] = _f(
        "transpose", "Upsampling",
        "transpose: the paper's transposed conv. resize: nearest upsample + conv, free of checkerboard artifacts.")
    ndf: int = _f(64, "Discriminator width (ndf)", "Filters in the discriminator's first conv layer.", lo=4, hi=256)
    n_layers_D: int = _f(
        3, "Discriminator layers", "Strided layers of the PatchGAN; 3 gives the 70×70 receptive field.",
        lo=1, hi=6)
    n_layers_D_map: int = _f(
        0, "Discriminator layers (colour/local)",
        "Strided layers of the colour and local families' critics, in place of n_layers_D. These generators change a "
        "pixel from its own colour (colour) or from 12 px around it (local); a critic of 1 layer sees 16 × 16 px, "
        "enough to judge colours and fine detail, where one of 3 sees 70 × 70 px and also judges what the two "
        "folders' photos show, which these maps cannot change and may chase with wrong colours. 0: n_layers_D. "
        "The Wasserstein objectives keep n_layers_D (their critic is also the live W estimate).",
        lo=0, hi=6, advanced=True)
    norm: Literal["instance", "none"] = _f(
        "instance", "Generator norm", "Normalisation in the generator (instance norm without affine, as the paper).")
    norm_D: Literal["instance", "layer", "none"] = _f(
        "instance", "Discriminator norm",
        "Normalisation in the discriminator/critic. Never batch norm: it breaks the per-image gradient penalty.")
    spectral_norm: bool = _f(False, "Spectral norm (D)", "Spectrally normalise the discriminator's conv weights.")
    diffaugment: bool = _f(False, "DiffAugment (D)", "The discriminators see real and fake images through the "
                           "same random translation and cutout (Zhao et al. 2020), so that they cannot memorise a "
                           "small folder.")
    input_skip: bool = _f(
        False, "Input skip", "The generator outputs tanh(atanh(0.999·x) + h(x)), h its last conv's output, zeroed at "
        "start: it begins as the identity and learns the change, so fine detail survives. Off in the paper. It "
        "learns small changes (a colour grade) fast, but on large or texture changes it can stay at G(x) = x.")
    ema_horizon: float = _f(
        0.1, "EMA horizon", "The generator average spans at most this share of the run (its decay is capped at "
        "1 − 1/(horizon × steps)), so a short run's average is not stuck in its early steps. 0: no cap.",
        lo=0.0, hi=1.0, advanced=True)
    ema_decay: float = _f(
        0.0, "Generator EMA",
        "Exponential moving average of the generator weights, used for previews and translation. 0 turns it off.",
        lo=0.0, hi=0.9999)


@dataclass(frozen=True)
class ObjectiveConfig:
    gan_mode: Literal["vanilla", "lsgan", "wgan-clip", "wgan-gp"] = _f(
        "lsgan", "GAN objective",
        "vanilla: the log loss. lsgan: least squares (the paper's practice). "
        "wgan-clip / wgan-gp: a Wasserstein critic, with weight clipping or a gradient penalty; "
        "these plot a live W estimate.")
    lambda_cyc: float = _f(10.0, "λ cycle", "Weight of the cycle-consistency L1 loss.", lo=0.0, hi=1000.0)
    lambda_cyc_map: float = _f(
        0.0, "λ cycle (colour/local)",
        "Weight of the cycle loss for the colour and local families, in place of λ cycle (the identity weight stays "
        "relative to it). These families keep the picture's structure by construction, so the cycle only has to "
        "keep their colours from collapsing; at 10 it pulls a change that loses information (to grey, a faded "
        "print) towards one it can undo, with a tint the truth lacks. The auto recipe sets 3. 0: λ cycle. The "
        "Wasserstein objectives keep λ cycle.",
        lo=0.0, hi=1000.0, advanced=True)
    cycle_warmup: float = _f(
        0.0, "Cycle warm-up", "λ cycle rises linearly from 0 over this share of the run. At the start an identity "
        "generator (input skip) satisfies the cycle exactly, and the L1 loss's constant pull can keep it there; a "
        "warm-up lets the adversarial loss move it first. 0: the full weight from the start (the paper).",
        lo=0.0, hi=1.0)
    lambda_id: float = _f(
        0.5, "λ identity", "Identity loss weight, relative to λ cycle. 0 skips the identity passes.",
        lo=0.0, hi=10.0)
    pool_size: int = _f(
        50, "Fake pool size", "History of generated images the discriminator sees. 0 disables the pool.",
        lo=0, hi=1000)
    # Shown (in the form) only for the objectives they belong to:
    clip_value: float = _f(0.01, "Clip value c",
                           "wgan-clip: critic weights are clipped to [−c, c] after every critic step.",
                           lo=1e-5, hi=1.0, shown_for=("wgan-clip",))
    lambda_gp: float = _f(10.0, "λ GP", "wgan-gp: weight of the gradient penalty λ·E[(‖∇f(x̂)‖ − 1)²].",
                          lo=0.0, hi=1000.0, shown_for=("wgan-gp",))
    n_critic: int = _f(5, "Critic steps", "Wasserstein: critic updates per generator update.",
                       lo=1, hi=20, shown_for=WASSERSTEIN_MODES)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = _f(
        2e-4, "Learning rate",
        "Adam learning rate of the generators (and of the discriminators unless lr_D is set).", lo=1e-7, hi=1e-1)
    lr_map: float = _f(
        0.0, "Learning rate (colour/local start)",
        "Adam learning rate of the colour and local families' generators in their first 150 steps, falling to lr "
        "by step 300: a per-pixel map comes from its random start to a faithful one sooner. The auto recipe sets "
        "1e-3, with λ cycle (colour/local) 3: with the cycle weight of 10 the fast map found the truth and then "
        "drifted from it on lossy changes. 0: lr throughout. The critics keep lr.",
        lo=0.0, hi=1e-1, advanced=True)
    lr_D: float = _f(
        0.0, "Learning rate (D)", "Discriminator/critic learning rate; 0 uses lr (or the Wasserstein default).",
        lo=0.0, hi=1e-1, advanced=True)
    beta1: float = _f(0.5, "Adam β1", "Adam's first-moment decay.", lo=0.0, hi=0.9999)
    beta2: float = _f(0.999, "Adam β2", "Adam's second-moment decay.", lo=0.0, hi=0.99999)
    wgan_defaults: bool = _f(
        True, "Wasserstein optimiser defaults",
        "With a Wasserstein objective, use the papers' optimisers: "
        "RMSProp 5e-5 (clip) or Adam 1e-4, β (0.5, 0.9) (gp).",
        shown_for=WASSERSTEIN_MODES)


@dataclass(frozen=True)
class DataConfig:
    preprocess: Literal["auto", "resize_and_crop", "crop"] = _f(
        "resize_and_crop", "Preprocessing",
        "resize_and_crop: each image is resized to load_size × load_size, then randomly cropped (the paper's). "
        "crop: random "
        "crops of each image at its own resolution, so the networks learn at the scale they will translate at "
        "(load_size is then unused). auto: crop for the colour and local generators (their reach is in pixels of "
        "the image they translate), resize_and_crop for the ResNet.")
    load_size: int = _f(
        286, "Load size", "resize_and_crop: images are resized to this square size before the random crop.",
        lo=8, hi=2048, unit="px")
    crop_size: int = _f(
        256, "Crop size", "Size of the random square crop the networks train on (a multiple of 4).",
        lo=8, hi=2048, unit="px")
    flip: bool = _f(True, "Random flip", "Random horizontal flip.")
    batch_size: int = _f(1, "Batch size", "Images per domain per step.", lo=1, hi=256)
    cache_mb: int = _f(
        2048, "Cache budget", "Decoded images are kept in memory up to this size.",
        lo=0, hi=1 << 20, unit="MB", advanced=True)
    max_pixels: int = _f(
        80_000_000, "Pixel limit",
        "Images with more pixels are refused without being decoded (decompression-bomb guard).",
        lo=1, hi=1 << 31, advanced=True)
    val_fraction: float = _f(
        0.05, "Held-out fraction", "Fraction of each domain held out for validation, never trained on.",
        lo=0.0, hi=0.5)
    val_min: int = _f(
        4, "Held-out minimum", "Minimum held-out images per domain (when the domain has enough).",
        lo=0, hi=10000)


@dataclass(frozen=True)
class ScheduleConfig:
    # The run's length: one of three budgets (``BUDGETS``, ``budget_of``). Under steps or minutes the
    # epochs still shape the learning-rate decay: full LR for n_epochs / (n_epochs + n_epochs_decay) of the run.
    n_epochs: int = _f(
        100, "Epochs at full LR", "Epochs at the initial learning rate.", lo=0, hi=100000, budget="epochs")
    n_epochs_decay: int = _f(100, "Decay epochs", "Epochs over which the learning rate decays linearly to zero.", lo=0,
                             hi=100000, budget="epochs")
    max_steps: int = _f(
        0, "Steps", "Train for this many steps; the LR schedule is stretched to fit. 0: by epochs.", lo=0,
        hi=1 << 40, budget="steps")
    minutes: float = _f(
        0.0, "Training time",
        "Train for this many minutes of training time (pauses excluded), the whole schedule fitted into them: the "
        "learning rate decays and the generator average narrows with elapsed time, and the run ends decayed, with a "
        "checkpoint. 0: by steps or epochs. Wins over both.", lo=0.0, hi=1e7, unit="min", budget="minutes")
    time_limit: float = _f(
        0.0, "Time limit", "Stop cleanly, with a checkpoint, after this many minutes of this session, wherever "
        "the schedule is. 0: none.", lo=0.0, hi=1e7, unit="min", advanced=True)
    seed: int = _f(0, "Seed", "Random seed. Training is deterministic for a given seed on CPU.", lo=0, hi=2**31 - 1)
    log_every: int = _f(
        10, "Report every", "Steps between progress reports (losses, it/s).", lo=1, hi=100000, unit="steps")
    preview_every: int = _f(
        100, "Preview every", "Steps between preview images.", lo=1, hi=1000000, unit="steps")
    eval_every: int = _f(200, "Evaluate every",
                         "Steps between held-out evaluations (the W monitor, the held-out losses).",
                         lo=1, hi=1000000, unit="steps")
    eval_share: float = _f(0.1, "Evaluation share", "Put an evaluation off, past Evaluate every, until evaluations "
                           "take at most this share of the training time (each costs what the last one did). 1: "
                           "every Evaluate every steps exactly.", lo=0.01, hi=1.0, advanced=True)
    monitor: bool = _f(True, "W monitor", "At every evaluation, estimate W1 between translated held-out images and "
                       "real held-out ones (patches), per direction, with a critic of its own that never trains the "
                       "generators; keep checkpoints/best.pt with each direction's generator at its closest (by W "
                       "for the colour and local families, by the multi-scale structure reading for the ResNet). "
                       "Needs held-out images.")
    plateau_evals: int = _f(10, "Plateau after", "Say that training has reached a plateau when the monitor's reading "
                            "(the one best.pt ranks by) has improved in neither direction by more than its confidence "
                            "interval for this many evaluations.", lo=1, hi=10000,
                            unit="evaluations", advanced=True)
    stop_on_plateau: bool = _f(False, "Stop on plateau", "Stop (with a checkpoint) at the plateau notice instead of "
                               "only reporting it.", advanced=True)
    restore_on_drift: bool = _f(True, "Restore on drift", "Colour and local generator families: when the monitored W "
                                "had come below half the untranslated sources' and then rises to 1.2 times its best, "
                                "beyond the noise of both readings (the translations turning back, as a per-pixel map "
                                "does on a change it cannot express), restore the best step's generators and stop. "
                                "The ResNet is never stopped this way.",
                                advanced=True)
    search_share: float = _f(
        0.07, "Family trial share", "Generator family auto: the share of the budget each family trains for before the "
        "W monitor compares them; the families dropped cost their shares (of a budget of minutes; under steps or "
        "epochs the search adds its steps).", lo=0.01, hi=0.3, advanced=True)
    save_every: int = _f(500, "Checkpoint every", "Steps between checkpoints.", lo=1, hi=1000000, unit="steps")
    keep_checkpoints: int = _f(3, "Checkpoints kept", "Numbered checkpoints kept besides latest.", lo=1, hi=1000)


@dataclass(frozen=True)
class OutputConfig:
    device: Literal["auto", "cpu", "cuda", "mps"] = _f("auto", "Device", "auto picks cuda, then mps, then cpu.")
    amp: Literal["auto", "on", "off"] = _f(
        "auto", "bf16 autocast", "Compute in bf16 where it is safe (autocast); weights and optimiser state stay fp32. "
        "auto: where the device computes bf16 natively (CUDA GPUs with bf16; CPUs with AVX512-BF16 or AMX; Apple "
        "silicon with FEAT_BF16), never where it would be emulated. on: always (slower than fp32 where emulated). "
        "off: fp32.")
    channels_last: bool = _f(
        True, "channels_last",
        "Channels-last (NHWC) memory format: the same arithmetic, faster convolutions. On CPU a transposed-conv "
        "generator stays NCHW (torch's NHWC ConvTranspose backward is wrong there).", advanced=True)
    compile: Literal["auto", "on", "off"] = _f(
        "auto", "torch.compile", "Compile the generators' and critics' passes (forward and backward; never the "
        "gradient penalty's double backward). Compiling takes a while before the first step and pays back only over "
        "a long run. "
        "auto: on CUDA, for runs of at least 2,000 steps or 10 minutes; off on CPU, where it was measured slower "
        "(see the README's Performance section).", advanced=True)
    tensorboard: bool = _f(False, "TensorBoard", "Also write scalars and previews to RUN_DIR/tb.")
    threads: int = _f(0, "CPU threads", "torch intra-op threads; 0 uses all cores.", lo=0, hi=512, advanced=True)


GROUPS: dict[str, type] = {
    "model": ModelConfig,
    "objective": ObjectiveConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "schedule": ScheduleConfig,
    "output": OutputConfig,
}
GROUP_LABELS = {
    "model": "Model", "objective": "Objective", "optim": "Optimiser",
    "data": "Data", "schedule": "Schedule", "output": "Output",
}
