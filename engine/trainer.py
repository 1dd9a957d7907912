"""The CycleGAN training step and loop.

``Trainer.run()`` is a generator: each ``yield`` is a step boundary where the caller may
stop or pause, and what it yields is a frozen report (see ``engine.reports``). The
trainer knows nothing about threads or widgets; ``pause``/``resume``/``stop`` are
thread-safe requests that take effect at the next step boundary.

Notation (paper → code): G: A→B is ``self.G`` (paper's G), F: B→A is ``self.F``
(paper's F), D_B judges domain B (paper's D_Y), D_A judges domain A (paper's D_X).

Everything random in a step (batch, crops, flips, pool draws, GP interpolation) is a
pure function of (seed, step), so a run resumed from a checkpoint at step N continues
exactly like an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from . import __version__
from .checkpoint import (CheckpointError, CheckpointManager, atomic_write_text, check_architecture,
                         config_from_checkpoint, load_checkpoint, write_json)
from .config import Config
from .data import DataError, DataGoneError, ImageFolder, UnpairedBatches, open_domains, to_uint8_image
from .distributed import SINGLE, DistInfo, agree_any, average_gradients, broadcast_module
from .networks import build_critic, build_generator
from .objectives import DLoss, build_objective, cycle_loss, gradient_penalty, identity_loss
from .pool import ImagePool
from .previews import preview_grid, save_png
from .reports import (CheckpointReport, EvalReport, FinishedReport, PreviewReport, ProgressReport, Report,
                      WarningReport)
from .watch import FailureWatch

log = logging.getLogger(__name__)

__all__ = ["Trainer", "resolve_device", "step_generator", "lr_multiplier"]

MAX_CONSECUTIVE_FAULTS = 5


def resolve_device(name: str = "auto") -> torch.device:
    """auto → cuda, then mps, then cpu. A named device that is not there is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was requested but MPS is not available; use cpu or auto")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; valid choices: auto, cpu, cuda, mps")
    return torch.device(name)


def available_devices() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


def step_generator(seed: int, step: int, stream: str) -> torch.Generator:
    """A CPU generator whose state depends only on (seed, step, stream)."""
    h = hashlib.blake2b(f"{seed}/{step}/{stream}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(h, "little") & ((1 << 63) - 1))


def lr_multiplier(step: int, total_steps: int, n_epochs: int, n_epochs_decay: int) -> float:
    """The reference's linear decay: constant for n_epochs, then linearly to 0 over n_epochs_decay.

    Epochs are measured as a fraction of the whole run, so a step-limited run decays over
    the same share of its steps as an epoch-limited one.
    """
    total_epochs = n_epochs + n_epochs_decay
    if total_epochs == 0 or n_epochs_decay == 0:
        return 1.0
    epoch = int(step * total_epochs / max(total_steps, 1))
    return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def _finite_grads(params: list[torch.Tensor]) -> bool:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    norms = torch._foreach_norm(grads)
    return bool(torch.isfinite(torch.stack(norms)).all())


@dataclass
class _StepResult:
    metrics: dict[str, float]
    faulted: bool


class Trainer:
    """Trains CycleGAN on two ImageFolders. See the module docstring for the contract."""

    def __init__(self, config: Config, dataset_a: ImageFolder, dataset_b: ImageFolder,
                 device: str | torch.device | None = None, run_dir: str | os.PathLike | None = None,
                 *, ground_truth: Any = None, dist_info: DistInfo = SINGLE):
        self.cfg = config
        self.dist = dist_info
        self.device = torch.device(device) if isinstance(device, torch.device) else resolve_device(device or config.output.device)
        # Only rank 0 writes metrics, previews and checkpoints.
        self.run_dir = Path(run_dir) if run_dir is not None and dist_info.is_main else None
        self.ground_truth = ground_truth  # optional engine.quality.GroundTruth for PSNR evaluation
        if config.output.threads:
            torch.set_num_threads(config.output.threads)

        d, s = config.data, config.schedule
        self.train_a, self.val_a = dataset_a.split(d.val_fraction, d.val_min, s.seed)
        self.train_b, self.val_b = dataset_b.split(d.val_fraction, d.val_min, s.seed)
        if dist_info.enabled:  # each rank trains on its own disjoint shard of A and of B
            self.train_a = self.train_a.shard(dist_info.rank, dist_info.world_size)
            self.train_b = self.train_b.shard(dist_info.rank, dist_info.world_size)
        self.batches = UnpairedBatches(self.train_a, self.train_b, batch_size=d.batch_size, crop_size=d.crop_size,
                                       flip=d.flip, seed=s.seed, device=self.device)
        # Extra critic iterations (Wasserstein, n_critic > 1) draw fresh batches from their own stream.
        self.critic_batches = UnpairedBatches(self.train_a, self.train_b, batch_size=d.batch_size,
                                              crop_size=d.crop_size, flip=d.flip, seed=s.seed + 7919,
                                              device=self.device)
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.total_steps = s.max_steps or (s.n_epochs + s.n_epochs_decay) * self.steps_per_epoch
        if self.total_steps <= 0:
            raise ValueError("nothing to train: n_epochs + n_epochs_decay is 0 and max_steps is 0")

        torch.manual_seed(s.seed)  # deterministic initialisation
        self.G = build_generator(config).to(self.device)
        self.F = build_generator(config).to(self.device)
        self.D_A = build_critic(config).to(self.device)
        self.D_B = build_critic(config).to(self.device)
        if dist_info.enabled:
            for net in (self.G, self.F, self.D_A, self.D_B):
                broadcast_module(net)
        self.G_ema = copy.deepcopy(self.G).eval() if config.model.ema_decay > 0 else None
        self.F_ema = copy.deepcopy(self.F).eval() if config.model.ema_decay > 0 else None
        for net in (self.G_ema, self.F_ema):
            if net is not None:
                set_requires_grad([net], False)
        self.objective = build_objective(config)
        self.opt_G = self._make_optimizer(itertools.chain(self.G.parameters(), self.F.parameters()),
                                          *config.g_optimizer_settings())
        self.opt_D = self._make_optimizer(itertools.chain(self.D_A.parameters(), self.D_B.parameters()),
                                          *config.d_optimizer_settings())
        self.base_lr_G = self.opt_G.param_groups[0]["lr"]
        self.base_lr_D = self.opt_D.param_groups[0]["lr"]
        self.lr_scale = 1.0  # halved after repeated numerical faults
        self.pool_A = ImagePool(0 if config.is_wasserstein else config.objective.pool_size)
        self.pool_B = ImagePool(0 if config.is_wasserstein else config.objective.pool_size)
        self.step = 0
        self.elapsed_before = 0.0  # seconds trained in earlier sessions of this run
        self.fault_count = 0
        self._consecutive_faults = 0
        self.data_wait_s = 0.0  # time run() spent waiting for batches (the benchmark reads it)

        self._fixed = self.batches_fixed()
        self._ckpt = CheckpointManager(self.run_dir, config.schedule.keep_checkpoints) if self.run_dir else None
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._save_request = threading.Event()
        self._lock = threading.Lock()
        self.watch = FailureWatch(config)

        self.use_amp = self.device.type == "cuda" and config.output.amp
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        # NHWC: on CPU, oneDNN's convolution backward is ~3× faster than in NCHW at these sizes.
        # But torch 2.14's CPU backward through a ConvTranspose2d generator in NHWC is wrong at
        # batch size 1 (F(G(a)) gradients off by ~0.1 even in float64; resize-conv and batch 2 are
        # exact), so on CPU the transposed-conv generators stay NCHW. The critics are exact in NHWC.
        self._cl_critics = config.output.channels_last
        self._cl_generators = config.output.channels_last and (self.device.type == "cuda"
                                                                or config.model.upsample == "resize")
        for net in self._nets():
            is_generator = net in (self.G, self.F, self.G_ema, self.F_ema)
            if self._cl_generators if is_generator else self._cl_critics:
                net.to(memory_format=torch.channels_last)
        self._g_fwd, self._f_fwd = self.G, self.F
        if config.output.compile and self.device.type == "cuda":
            # Compile the generators only: the critics sit on the gradient-penalty path (double backward).
            self._g_fwd, self._f_fwd = torch.compile(self.G), torch.compile(self.F)

    # --- construction helpers --------------------------------------------------------------
    def _make_optimizer(self, params, kind: str, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
        params = list(params)
        if kind == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, foreach=True)
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)

    def _nets(self) -> list[nn.Module]:
        return [m for m in (self.G, self.F, self.D_A, self.D_B, self.G_ema, self.F_ema) if m is not None]

    def batches_fixed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The preview batch: held-out images when there are any, so previews show unseen data."""
        n = 2
        a = self.val_a if len(self.val_a) else self.train_a
        b = self.val_b if len(self.val_b) else self.train_b
        fixed = UnpairedBatches(a, b, batch_size=1, crop_size=self.cfg.data.crop_size, flip=False,
                                seed=self.cfg.schedule.seed, device=self.device)
        return fixed.fixed(min(n, len(a), len(b)))

    @classmethod
    def from_folders(cls, config: Config, path_a, path_b, run_dir=None, device=None,
                     dist_info: DistInfo = SINGLE) -> "Trainer":
        ds_a, ds_b = open_domains(path_a, path_b, config)
        from .demo import ground_truth_dir

        gt = None
        gt_dir = ground_truth_dir(path_a)
        if gt_dir is not None and dist_info.is_main:
            from .quality import GroundTruth

            gt = GroundTruth.from_demo_dir(gt_dir.parent, config)
        trainer = cls(config, ds_a, ds_b, device=device, run_dir=run_dir, ground_truth=gt, dist_info=dist_info)
        trainer.data_paths = (str(Path(path_a).resolve()), str(Path(path_b).resolve()))
        return trainer

    # --- thread-safe controls ---------------------------------------------------------------
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can see the stop

    def request_save(self) -> None:
        """Save a checkpoint at the next step boundary."""
        self._save_request.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- the step ---------------------------------------------------------------------------
    def _autocast(self):
        if self.use_amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        if self._cl_generators:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _set_lr(self) -> float:
        s = self.cfg.schedule
        mult = lr_multiplier(self.step, self.total_steps, s.n_epochs, s.n_epochs_decay) * self.lr_scale
        for g in self.opt_G.param_groups:
            g["lr"] = self.base_lr_G * mult
        for g in self.opt_D.param_groups:
            g["lr"] = self.base_lr_D * mult
        return self.base_lr_G * mult

    def _backward_and_step(self, opt: torch.optim.Optimizer, loss: torch.Tensor) -> bool:
        """Backward, average gradients across ranks, and step, unless anything is non-finite.

        Returns whether the update was applied. A skipped update leaves the weights untouched.
        """
        finite = bool(torch.isfinite(loss.detach()))
        params = [p for g in opt.param_groups for p in g["params"]]
        if self.dist.enabled:
            # Every rank must join the all_reduce; a rank with a bad loss poisons it so all skip alike.
            loss.backward()
            average_gradients(params, self.dist.world_size, poison=not finite)
        elif finite:
            loss.backward()
        if not finite or not _finite_grads(params):
            opt.zero_grad(set_to_none=True)
            return False
        opt.step()
        return True

    def _critic_update(self, real_a, real_b, fake_a, fake_b, gen) -> tuple[DLoss, DLoss, bool]:
        """One update of D_A and D_B on detached fakes. Returns (D_A loss, D_B loss, applied)."""
        obj = self.objective
        self.opt_D.zero_grad(set_to_none=True)
        with self._autocast():
            d_b = obj.d_loss(self.D_B, real_b, fake_b.detach(), gen)
            d_a = obj.d_loss(self.D_A, real_a, fake_a.detach(), gen)
            loss = d_a.loss + d_b.loss
        if not self._backward_and_step(self.opt_D, loss):
            return d_a, d_b, False
        obj.after_d_step(self.D_A)
        obj.after_d_step(self.D_B)
        return d_a, d_b, True

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> _StepResult:
        """One generator update and the critic update(s) that go with it. Mutates the models."""
        cfg = self.cfg
        lam, lam_id = cfg.objective.lambda_cyc, cfg.objective.lambda_id
        gen = step_generator(cfg.schedule.seed, self.step, "step")
        real_a, real_b = self._to_device(real_a), self._to_device(real_b)
        bs = real_a.shape[0]
        faulted = False

        # Wasserstein: the first n_critic − 1 critic updates on fresh batches, before the generator moves.
        if cfg.is_wasserstein and cfg.objective.n_critic > 1:
            n_extra = cfg.objective.n_critic - 1
            for k in range(n_extra):
                ca, cb = self.critic_batches.batch(self.step * n_extra + k)
                ca, cb = self._to_device(ca), self._to_device(cb)
                with torch.no_grad(), self._autocast():
                    cfa, cfb = self._f_fwd(cb), self._g_fwd(ca)
                _, _, ok = self._critic_update(ca, cb, cfa, cfb, gen)
                faulted |= not ok

        # G update: minimise L_GAN(G, D_B) + L_GAN(F, D_A) + λ·L_cyc + λ·λ_id·L_idt, with D frozen.
        # Independent passes of each generator are batched together (instance norm is per image,
        # so batching changes nothing): F([b; a]) → F(b), F(a); G([a; F(b); b]) → G(a), G(F(b)), G(b).
        set_requires_grad([self.D_A, self.D_B], False)
        self.opt_G.zero_grad(set_to_none=True)
        use_idt = lam_id > 0
        with self._autocast():
            f_out = self._f_fwd(torch.cat([real_b, real_a]) if use_idt else real_b)
            fake_a = f_out[:bs]
            g_out = self._g_fwd(torch.cat([real_a, fake_a, real_b]) if use_idt else torch.cat([real_a, fake_a]))
            fake_b, rec_b = g_out[:bs], g_out[bs:2 * bs]
            rec_a = self._f_fwd(fake_b)
            loss_G_A = self.objective.g_loss(self.D_B, fake_b)
            loss_G_B = self.objective.g_loss(self.D_A, fake_a)
            loss_cyc_A = lam * cycle_loss(rec_a, real_a)
            loss_cyc_B = lam * cycle_loss(rec_b, real_b)
            if use_idt:
                loss_idt_A = lam * lam_id * identity_loss(g_out[2 * bs:], real_b)
                loss_idt_B = lam * lam_id * identity_loss(f_out[bs:], real_a)
            else:
                loss_idt_A = loss_idt_B = torch.zeros((), device=self.device)
            loss_G = loss_G_A + loss_G_B + loss_cyc_A + loss_cyc_B + loss_idt_A + loss_idt_B
        g_ok = self._backward_and_step(self.opt_G, loss_G)
        if g_ok:
            self._update_ema()
        faulted |= not g_ok
        set_requires_grad([self.D_A, self.D_B], True)

        # D update: maximise L_GAN over D_A and D_B (minimise their losses) on detached fakes,
        # drawn through the history pool (the pool is off for Wasserstein critics).
        pool_fake_b = self.pool_B.query(fake_b.detach(), gen)
        pool_fake_a = self.pool_A.query(fake_a.detach(), gen)
        d_a, d_b, d_ok = self._critic_update(real_a, real_b, pool_fake_a, pool_fake_b, gen)
        faulted |= not d_ok

        losses = {"G_A": loss_G_A, "G_B": loss_G_B, "D_A": d_a.loss, "D_B": d_b.loss, "cycle_A": loss_cyc_A,
                  "cycle_B": loss_cyc_B, "idt_A": loss_idt_A, "idt_B": loss_idt_B}
        # One device→host transfer for all losses instead of eight synchronising .item() calls.
        values = torch.stack([v.detach().float() for v in losses.values()]).cpu().tolist()
        metrics = dict(zip(losses, values))
        if cfg.is_wasserstein:
            # W estimate E_real f − E_fake f on the current generator's fakes (the pool is off for
            # critics), measured by the critic before this update, the one the generator step saw.
            metrics["w_B"] = float(d_b.w_estimate)
            metrics["w_A"] = float(d_a.w_estimate)
            if d_b.grad_norm is not None:
                metrics["gp_grad_norm_A"] = float(d_a.grad_norm)
                metrics["gp_grad_norm_B"] = float(d_b.grad_norm)
        return _StepResult(metrics, faulted)

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.G_ema is None:
            return
        decay = self.ema_decay_at(self.step)
        for ema, net in ((self.G_ema, self.G), (self.F_ema, self.F)):
            torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - decay)

    def ema_decay_at(self, step: int) -> float:
        """The EMA decay used by the update after ``step`` completed steps: the configured decay,
        warmed up as min(decay, (1 + step) / (10 + step)), so that a short run's average is not
        dominated by the random initial weights (at decay 0.999 they would keep a weight of
        0.999^step: still 37% after 1,000 steps)."""
        return min(self.cfg.model.ema_decay, (1.0 + step) / (10.0 + step))

    def inference_generators(self) -> tuple[nn.Module, nn.Module]:
        """(G, F) for previews and translation: the EMA copies when EMA is on."""
        return (self.G_ema or self.G), (self.F_ema or self.F)

    # --- previews and evaluation ------------------------------------------------------------
    @torch.no_grad()
    def make_preview(self) -> dict[str, np.ndarray]:
        G, F = self.inference_generators()
        was = [G.training, F.training]
        G.eval(), F.eval()
        real_a, real_b = (self._to_device(x) for x in self._fixed)
        with self._autocast():
            fake_b = G(real_a)
            rec_a = F(fake_b)
            fake_a = F(real_b)
            rec_b = G(fake_a)
        G.train(was[0]), F.train(was[1])
        out = {"real_A": real_a, "fake_B": fake_b, "rec_A": rec_a, "real_B": real_b, "fake_A": fake_a, "rec_B": rec_b}
        return {k: to_uint8_image(v.float()) for k, v in out.items()}

    def evaluate(self) -> dict[str, float]:
        """Held-out figures: never-trained-on images through the current models."""
        out: dict[str, float] = {}
        if len(self.val_a) and len(self.val_b):
            n = min(len(self.val_a), len(self.val_b), 16)
            ev = UnpairedBatches(self.val_a, self.val_b, batch_size=1, crop_size=self.cfg.data.crop_size,
                                 flip=False, seed=self.cfg.schedule.seed, device=self.device)
            real_a, real_b = (self._to_device(x) for x in ev.fixed(n))
            with torch.no_grad(), self._autocast():
                fake_b, fake_a = self.G(real_a), self.F(real_b)
                rec_a, rec_b = self.F(fake_b), self.G(fake_a)
                out["cycle_A_val"] = float(cycle_loss(rec_a.float(), real_a.float()) * self.cfg.objective.lambda_cyc)
                out["cycle_B_val"] = float(cycle_loss(rec_b.float(), real_b.float()) * self.cfg.objective.lambda_cyc)
            if self.cfg.is_wasserstein:
                from .objectives import _critic_value

                with torch.no_grad(), self._autocast():
                    out["w_B_val"] = float(_critic_value(self.D_B, real_b).float().mean() - _critic_value(self.D_B, fake_b).float().mean())
                    out["w_A_val"] = float(_critic_value(self.D_A, real_a).float().mean() - _critic_value(self.D_A, fake_a).float().mean())
                gen = step_generator(self.cfg.schedule.seed, self.step, "eval")
                for name, D, real, fake in (("A", self.D_A, real_a, fake_a), ("B", self.D_B, real_b, fake_b)):
                    _, norm = gradient_penalty(lambda x, D=D: _critic_value(D, x), real, fake, gen)
                    out[f"gp_grad_norm_{name}_val"] = float(norm)
        if self.ground_truth is not None:
            G, F = self.inference_generators()
            out.update(self.ground_truth.score(G, F, self.device))
        return out

    # --- checkpoints ------------------------------------------------------------------------
    def state_payload(self) -> dict[str, Any]:
        models = {"G": self.G.state_dict(), "F": self.F.state_dict(),
                  "D_A": self.D_A.state_dict(), "D_B": self.D_B.state_dict()}
        if self.G_ema is not None:
            models["G_ema"] = self.G_ema.state_dict()
            models["F_ema"] = self.F_ema.state_dict()
        cpu = lambda sd: {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in sd.items()}  # noqa: E731
        return {
            "config": self.cfg.to_json(indent=None),
            "step": self.step,
            "epoch": self.batches.epoch_of(self.step),
            "elapsed_s": self.elapsed_before + self._session_elapsed(),
            "lr_scale": self.lr_scale,
            "fault_count": self.fault_count,
            "models": {k: cpu(v) for k, v in models.items()},
            "optim": {"G": self.opt_G.state_dict(), "D": self.opt_D.state_dict()},
            # The LR schedule is a pure function of the step (and lr_scale), so this is its whole state.
            "scheduler": {"total_steps": self.total_steps, "lr_scale": self.lr_scale},
            "pool": {"A": self.pool_A.state_dict(), "B": self.pool_B.state_dict()},
            "rng": {"torch": torch.get_rng_state(), "seed": self.cfg.schedule.seed},
            "data": {"paths": list(getattr(self, "data_paths", ("", "")))},
            "version": __version__,
        }

    def save_checkpoint(self) -> Path:
        if self._ckpt is None:
            raise CheckpointError("this trainer has no run folder to save into")
        path = self._ckpt.save(self.step, self.state_payload())
        self._last_checkpoint_step = self.step
        return path

    def load_state(self, ck: dict[str, Any], source: str = "checkpoint") -> None:
        """Restore models, optimisers, pool and step from a loaded checkpoint (same architecture)."""
        cfg_ck = config_from_checkpoint(ck, source)
        check_architecture(self.cfg, ck["models"]["G"], source)
        if cfg_ck.model.ndf != self.cfg.model.ndf or cfg_ck.model.n_layers_D != self.cfg.model.n_layers_D:
            raise CheckpointError(f"{source}: architecture mismatch: expected discriminator ndf={self.cfg.model.ndf}, "
                                  f"n_layers_D={self.cfg.model.n_layers_D}, found ndf={cfg_ck.model.ndf}, "
                                  f"n_layers_D={cfg_ck.model.n_layers_D}")
        try:
            self.G.load_state_dict(ck["models"]["G"])
            self.F.load_state_dict(ck["models"]["F"])
            self.D_A.load_state_dict(ck["models"]["D_A"])
            self.D_B.load_state_dict(ck["models"]["D_B"])
            if self.G_ema is not None:
                self.G_ema.load_state_dict(ck["models"].get("G_ema", ck["models"]["G"]))
                self.F_ema.load_state_dict(ck["models"].get("F_ema", ck["models"]["F"]))
            self.opt_G.load_state_dict(ck["optim"]["G"])
            self.opt_D.load_state_dict(ck["optim"]["D"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{source} does not fit this model: {str(e).splitlines()[0][:300]}") from None
        self.pool_A.load_state_dict(ck["pool"]["A"], self.device)
        self.pool_B.load_state_dict(ck["pool"]["B"], self.device)
        self.step = int(ck["step"])
        self.elapsed_before = float(ck.get("elapsed_s", 0.0))
        self.lr_scale = float(ck.get("lr_scale", 1.0))
        self.fault_count = int(ck.get("fault_count", 0))
        if "rng" in ck and torch.is_tensor(ck["rng"].get("torch")):
            torch.set_rng_state(ck["rng"]["torch"])
        self._last_checkpoint_step = self.step

    # --- run folder -------------------------------------------------------------------------
    def _prepare_run_dir(self) -> None:
        if self.run_dir is None:
            return
        (self.run_dir / "previews").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        if self._ckpt.remove_stale_temp_files():
            log.info("removed temp files of an interrupted save in %s", self._ckpt.dir)
        atomic_write_text(self.run_dir / "config.json", self.cfg.to_json() + "\n")
        write_json(self.run_dir / "run.json", {
            "version": __version__, "data": list(getattr(self, "data_paths", ("", ""))),
            "device": str(self.device), "total_steps": self.total_steps,
        })
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists():
            # Drop rows written after the checkpoint we resume from (a kill between checkpoints).
            keep = []
            for line in metrics.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from a kill
                if isinstance(row, dict) and int(row.get("step", 0)) <= self.step:
                    keep.append(line)
            atomic_write_text(metrics, "".join(k + "\n" for k in keep))

    def _log_row(self, row: dict[str, Any]) -> None:
        if self.run_dir is None:
            return
        try:
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            log.warning("could not append to metrics.jsonl: %s", e)

    def _session_elapsed(self) -> float:
        return time.perf_counter() - self._t0 if getattr(self, "_t0", None) is not None else 0.0

    # --- the loop ---------------------------------------------------------------------------
    def run(self, stop_at: int | None = None) -> Iterator[Report]:
        """Train until ``stop_at`` (default: the end of the schedule), yielding reports.

        With ``output.tensorboard`` on, every report is also written to RUN_DIR/tb.
        """
        tb = None
        if self.cfg.output.tensorboard and self.run_dir is not None:
            from .tb import MissingExtraError, TensorBoardLogger

            try:
                tb = TensorBoardLogger(self.run_dir)
            except MissingExtraError as e:
                yield WarningReport(self.step, "tensorboard", str(e), "Metrics are still in metrics.jsonl.")
        try:
            for rep in self._run(stop_at):
                if tb is not None:
                    tb.log(rep)
                yield rep
        finally:
            if tb is not None:
                tb.close()

    def _run(self, stop_at: int | None) -> Iterator[Report]:
        cfg, s = self.cfg, self.cfg.schedule
        end = min(stop_at, self.total_steps) if stop_at is not None else self.total_steps
        self._t0 = time.perf_counter()
        self._last_checkpoint_step = getattr(self, "_last_checkpoint_step", self.step)
        try:
            self._prepare_run_dir()
        except (OSError, CheckpointError) as e:
            yield FinishedReport(self.step, "error", f"cannot write the run folder: {e}")
            return
        time_limit = s.time_limit * 60.0
        window_t, window_steps = time.perf_counter(), 0
        its = 0.0
        metrics_sum: dict[str, float] = {}
        n_in_window = 0
        batches = self.batches.prefetch(self.step)
        reason, message = "completed", ""
        for m in self.G, self.F, self.D_A, self.D_B:
            m.train()
        try:
            while self.step < end:
                # --- step boundary: controls ---
                if not self._running.is_set():
                    paused_at = time.perf_counter()
                    while not self._running.wait(0.1):
                        if self._save_request.is_set() and self.run_dir is not None:  # save while paused
                            self._save_request.clear()
                            yield from self._checkpoint_reports()
                    pause_len = time.perf_counter() - paused_at
                    self._t0 += pause_len  # time paused is not training time
                    window_t += pause_len
                stop_now = self._stop.is_set()
                time_up = bool(time_limit) and self._session_elapsed() >= time_limit
                if self.dist.enabled:  # all ranks stop at the same step, or the collectives would hang
                    stop_now = agree_any(stop_now, self.device)
                    time_up = agree_any(time_up, self.device)
                if stop_now:
                    reason = "stopped"
                    break
                if time_up:
                    reason, message = "time-limit", f"time limit of {s.time_limit:g} min reached"
                    break
                if self._save_request.is_set() and self.run_dir is not None:
                    self._save_request.clear()
                    yield from self._checkpoint_reports()

                try:
                    t_wait = time.perf_counter()
                    real_a, real_b = next(batches)
                    self.data_wait_s += time.perf_counter() - t_wait
                except DataGoneError as e:
                    reason, message = "error", str(e)
                    break
                lr = self._set_lr()
                try:
                    result = self.train_step(real_a, real_b)
                except torch.OutOfMemoryError:
                    reason = "error"
                    message = (f"out of memory at crop_size={cfg.data.crop_size}, batch_size={cfg.data.batch_size}: "
                               "try a smaller crop size or batch size")
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    break
                self.step += 1
                window_steps += 1

                if result.faulted:
                    self.fault_count += 1
                    self._consecutive_faults += 1
                    yield WarningReport(self.step, "nan", f"non-finite loss or gradient at step {self.step}: update skipped "
                                        f"({self._consecutive_faults} in a row, {self.fault_count} in total)",
                                        "If this repeats, lower the learning rate.")
                    if self._consecutive_faults >= MAX_CONSECUTIVE_FAULTS:
                        yield from self._rollback()
                    continue
                self._consecutive_faults = 0
                for k, v in result.metrics.items():
                    metrics_sum[k] = metrics_sum.get(k, 0.0) + v
                n_in_window += 1

                if self.step % s.log_every == 0 or self.step == end:
                    now = time.perf_counter()
                    its = window_steps / max(now - window_t, 1e-9)
                    window_t, window_steps = now, 0
                    metrics = {k: v / n_in_window for k, v in metrics_sum.items()}
                    metrics_sum, n_in_window = {}, 0
                    elapsed = self.elapsed_before + self._session_elapsed()
                    rep = ProgressReport(self.step, self.total_steps, self.batches.epoch_of(self.step), lr, its,
                                         its * cfg.data.batch_size, elapsed,
                                         (self.total_steps - self.step) / its if its > 0 else math.inf, metrics)
                    self._log_row({"type": "progress", "step": self.step, "epoch": rep.epoch, "time": round(elapsed, 3),
                                   "lr": lr, "its_per_s": its, **metrics})
                    yield rep
                    for w in self.watch.observe(self.step, metrics):
                        log.warning("%s %s", w.message, w.hint)
                        yield w
                if self.step % s.eval_every == 0 and self.dist.is_main:
                    ev = self.evaluate()
                    if ev:
                        elapsed = self.elapsed_before + self._session_elapsed()
                        self._log_row({"type": "eval", "step": self.step, "time": round(elapsed, 3), **ev})
                        yield EvalReport(self.step, elapsed, ev)
                if self.step % s.preview_every == 0 and self.dist.is_main:
                    yield self._preview_report()
                if self.step % s.save_every == 0 and self.run_dir is not None:
                    yield from self._checkpoint_reports()
        finally:
            batches.close()

        checkpoint = None
        if self.run_dir is not None and (self.step != self._last_checkpoint_step or reason != "completed" or
                                         not self._ckpt.latest.exists()):
            reps = list(self._checkpoint_reports())
            yield from reps
            saved = [r for r in reps if isinstance(r, CheckpointReport)]
            checkpoint = saved[-1].path if saved else None
        elif self.run_dir is not None:
            checkpoint = str(self._ckpt.latest)
        if reason == "completed" and self.step % s.preview_every != 0 and self.dist.is_main:
            yield self._preview_report()
        self.elapsed_before += self._session_elapsed()
        self._t0 = None
        yield FinishedReport(self.step, reason, message, checkpoint)

    def _preview_report(self) -> PreviewReport:
        images = self.make_preview()
        path = None
        if self.run_dir is not None:
            p = self.run_dir / "previews" / f"step_{self.step:07d}.png"
            try:
                save_png(preview_grid(images, self.step), p)
                path = str(p)
            except CheckpointError as e:
                log.warning("could not save preview: %s", e)
        return PreviewReport(self.step, images, path)

    def _checkpoint_reports(self) -> Iterator[Report]:
        try:
            path = self.save_checkpoint()
        except CheckpointError as e:
            # A full disk or a read-only folder: say so and pause; the user can free space and resume.
            self.pause()
            yield WarningReport(self.step, "save-failed", f"checkpoint not saved: {e}",
                                "Free disk space or choose a writable run folder, then resume. Training is paused.",
                                severity="error")
            return
        yield CheckpointReport(self.step, str(path))

    def _rollback(self) -> Iterator[Report]:
        """After repeated numerical faults: back to the last checkpoint, at half the learning rate."""
        self._consecutive_faults = 0
        new_scale = self.lr_scale * 0.5
        restored = False
        faults = self.fault_count  # the tally of faults survives the rollback
        if self._ckpt is not None and self._ckpt.latest.exists():
            try:
                self.load_state(load_checkpoint(self._ckpt.latest, self.device), str(self._ckpt.latest))
                restored = True
            except CheckpointError as e:
                log.warning("rollback failed: %s", e)
        self.lr_scale = new_scale
        self.fault_count = faults
        where = f"rolled back to step {self.step}" if restored else "no checkpoint to roll back to"
        yield WarningReport(self.step, "rollback",
                            f"{MAX_CONSECUTIVE_FAULTS} numerical faults in a row: {where}; learning rate halved "
                            f"(now ×{self.lr_scale:g})", "Training continues at the lower learning rate.")

    # --- resume -----------------------------------------------------------------------------
    @classmethod
    def resume_run(cls, run_dir, device=None, *, max_steps: int | None = None,
                   data_paths: tuple[str, str] | None = None, dist_info: DistInfo = SINGLE) -> "Trainer":
        """Rebuild a trainer from a run folder's latest checkpoint and its data folders."""
        run_dir = Path(run_dir)
        ck = load_checkpoint(run_dir)
        cfg = config_from_checkpoint(ck, str(run_dir))
        if max_steps is not None:
            cfg = cfg.with_values(max_steps=max_steps)
        paths = data_paths or tuple(ck.get("data", {}).get("paths", ()))
        if len(paths) != 2 or not all(paths):
            raise DataError(f"{run_dir}: the checkpoint does not record its data folders; give them explicitly")
        trainer = cls.from_folders(cfg, paths[0], paths[1], run_dir=run_dir, device=device, dist_info=dist_info)
        trainer.load_state(ck, str(run_dir))
        return trainer
