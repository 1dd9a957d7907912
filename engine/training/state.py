"""Everything a run changes as it trains, built from a config, and its checkpoint payload.

``TrainingState`` holds the four networks (G: A→B, F: B→A, D_A, D_B), the generators'
averages (EMA), both optimisers, the two history pools of fakes, the step, the training
time, the learning-rate scale and the fault tally. ``payload()`` is what a checkpoint holds;
``restore()`` puts a checkpoint back, after checking that its architecture fits.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import torch
from torch import nn

from engine import __version__
from engine.config import Config
from engine.errors import CheckpointError
from engine.io.checkpoint_files import check_architecture, config_from_checkpoint
from engine.models.networks import build_critic, build_generator
from engine.models.pool import ImagePool
from engine.training.distributed import DistInfo, broadcast_module

__all__ = ["TrainingState", "set_requires_grad"]


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def _optimizer(params, kind: str, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    params = list(params)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=True)
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


def _cpu(sd: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in sd.items()}


class TrainingState:
    def __init__(self, cfg: Config, device: torch.device, dist: DistInfo):
        self.cfg = cfg
        torch.manual_seed(cfg.schedule.seed)  # deterministic initialisation
        self.G = build_generator(cfg).to(device)
        self.F = build_generator(cfg, inverse=True).to(device)
        self.D_A = build_critic(cfg).to(device)
        self.D_B = build_critic(cfg).to(device)
        if dist.enabled:  # every rank starts from rank 0's weights
            for net in (self.G, self.F, self.D_A, self.D_B):
                broadcast_module(net)
        ema = cfg.model.ema_decay > 0
        self.G_ema = copy.deepcopy(self.G).eval() if ema else None
        self.F_ema = copy.deepcopy(self.F).eval() if ema else None
        set_requires_grad([n for n in (self.G_ema, self.F_ema) if n is not None], False)
        self.opt_G = _optimizer(itertools.chain(self.G.parameters(), self.F.parameters()), *cfg.g_optimizer_settings())
        self.opt_D = _optimizer(itertools.chain(self.D_A.parameters(), self.D_B.parameters()),
                                *cfg.d_optimizer_settings())
        self.base_lr_G = self.opt_G.param_groups[0]["lr"]
        self.base_lr_D = self.opt_D.param_groups[0]["lr"]
        pool = 0 if cfg.is_wasserstein else cfg.objective.pool_size  # critics see the current fakes only
        self.pool_A, self.pool_B = ImagePool(pool), ImagePool(pool)
        self.step = 0
        self.elapsed_s = 0.0      # training time of earlier sessions of this run
        self.lr_scale = 1.0       # halved after repeated numerical faults
        self.fault_count = 0

    @property
    def generators(self) -> list[nn.Module]:
        return [n for n in (self.G, self.F, self.G_ema, self.F_ema) if n is not None]

    @property
    def critics(self) -> list[nn.Module]:
        return [self.D_A, self.D_B]

    def inference_generators(self) -> tuple[nn.Module, nn.Module]:
        """(G, F) for previews, evaluation and translation: the averages when EMA is on."""
        return (self.G_ema or self.G), (self.F_ema or self.F)

    def set_lr(self, multiplier: float, g_boost: float = 1.0) -> float:
        """Both optimisers at their base rate × ``multiplier`` × the fault scale, the generators' × ``g_boost``
        as well (their fast start); returns G's rate."""
        m = multiplier * self.lr_scale
        for g in self.opt_G.param_groups:
            g["lr"] = self.base_lr_G * m * g_boost
        for g in self.opt_D.param_groups:
            g["lr"] = self.base_lr_D * m
        return self.base_lr_G * m * g_boost

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        if self.G_ema is None:
            return
        for ema, net in ((self.G_ema, self.G), (self.F_ema, self.F)):
            torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - decay)

    # --- checkpoints ------------------------------------------------------------------------------
    def direction_nets(self, way: str) -> dict[str, nn.Module]:
        """One direction's generator and its average by checkpoint name: "AtoB" → G (and G_ema), "BtoA" → F."""
        name, net, ema = ("G", self.G, self.G_ema) if way == "AtoB" else ("F", self.F, self.F_ema)
        return {name: net, **({f"{name}_ema": ema} if ema is not None else {})}

    def generators_payload(self, data_scale: dict[str, float] | None = None,
                           kept: dict[str, tuple[int, dict[str, Any]]] | None = None) -> dict[str, Any]:
        """A checkpoint with the generators (and their averages) only: enough to translate and export. ``kept``
        (way → (step, {checkpoint name: weights})) replaces the current generators of a direction with weights
        kept from an earlier step; ``steps`` then records each direction's step, and ``step`` is the later."""
        models = {"G": self.G.state_dict(), "F": self.F.state_dict()}
        if self.G_ema is not None:
            models.update(G_ema=self.G_ema.state_dict(), F_ema=self.F_ema.state_dict())
        steps = {"AtoB": self.step, "BtoA": self.step}
        for way, (step, weights) in (kept or {}).items():
            models.update(weights)
            steps[way] = int(step)
        return {"config": self.cfg.to_json(indent=None), "step": max(steps.values()), "steps": steps,
                "version": __version__, "models": {k: _cpu(v) for k, v in models.items()},
                "data": {"scale": dict(data_scale or {})}}

    def payload(self, *, epoch: int, total_steps: int, elapsed_s: float, data_paths: tuple[str, str],
                data_scale: dict[str, float] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        models = {"G": self.G.state_dict(), "F": self.F.state_dict(),
                  "D_A": self.D_A.state_dict(), "D_B": self.D_B.state_dict()}
        if self.G_ema is not None:
            models["G_ema"] = self.G_ema.state_dict()
            models["F_ema"] = self.F_ema.state_dict()
        return {
            "config": self.cfg.to_json(indent=None),
            "step": self.step,
            "epoch": epoch,
            "elapsed_s": elapsed_s,
            "lr_scale": self.lr_scale,
            "fault_count": self.fault_count,
            "models": {k: _cpu(v) for k, v in models.items()},
            "optim": {"G": self.opt_G.state_dict(), "D": self.opt_D.state_dict()},
            # The LR schedule is a pure function of the step (and lr_scale), so this is its whole state.
            "scheduler": {"total_steps": total_steps, "lr_scale": self.lr_scale},
            "pool": {"A": self.pool_A.state_dict(), "B": self.pool_B.state_dict()},
            "rng": {"torch": torch.get_rng_state(), "seed": self.cfg.schedule.seed},
            # scale: the factor by which the networks saw each domain's images (load_size/√(w·h) when resized)
            "data": {"paths": list(data_paths), "scale": dict(data_scale or {})},
            "version": __version__,
            **(extra or {}),
        }

    def restore(self, ck: dict[str, Any], source: str, device: torch.device) -> None:
        """Put back models, optimisers, pools and counters from a loaded checkpoint of the same architecture."""
        cfg_ck = config_from_checkpoint(ck, source)
        check_architecture(self.cfg, ck["models"]["G"], source)
        m, m_ck = self.cfg.model, cfg_ck.model
        if m_ck.ndf != m.ndf or cfg_ck.critic_layers != self.cfg.critic_layers:
            raise CheckpointError(f"{source}: architecture mismatch: expected discriminator ndf={m.ndf} and depth "
                                  f"{self.cfg.critic_layers}, found ndf={m_ck.ndf} and depth {cfg_ck.critic_layers}")
        try:
            models = ck["models"]
            for name in ("G", "F", "D_A", "D_B"):
                getattr(self, name).load_state_dict(models[name])
            if self.G_ema is not None:
                self.G_ema.load_state_dict(models.get("G_ema", models["G"]))
                self.F_ema.load_state_dict(models.get("F_ema", models["F"]))
            self.opt_G.load_state_dict(ck["optim"]["G"])
            self.opt_D.load_state_dict(ck["optim"]["D"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{source} does not fit this model: {str(e).splitlines()[0][:300]}") from None
        self.pool_A.load_state_dict(ck["pool"]["A"], device)
        self.pool_B.load_state_dict(ck["pool"]["B"], device)
        self.step = int(ck["step"])
        self.elapsed_s = float(ck.get("elapsed_s", 0.0))
        self.lr_scale = float(ck.get("lr_scale", 1.0))
        self.fault_count = int(ck.get("fault_count", 0))
        if "rng" in ck and torch.is_tensor(ck["rng"].get("torch")):
            torch.set_rng_state(ck["rng"]["torch"])
