"""The training loop: objectives end to end, run folder, exact resume, controls, faults."""

import json
import math
import threading
import time

import pytest
import torch

from engine.config import WASSERSTEIN_MODES, with_recipe
from engine.data import open_domains
from engine.io.checkpoint_files import load_checkpoint
from engine.training.reports import (
    CheckpointReport,
    EvalReport,
    FinishedReport,
    PreviewReport,
    ProgressReport,
    WarningReport,
)
from engine.training.schedule import Schedule, ema_decay_at, lr_multiplier
from engine.training.speed import SpeedOptions
from engine.training.trainer import Trainer
from tests.helpers import make_domains, tiny_config


def trainer_for(tmp_path, cfg, run="run"):
    a, b = make_domains(tmp_path)
    ds_a, ds_b = open_domains(a, b, cfg)
    t = Trainer(cfg, ds_a, ds_b, device="cpu", run_dir=tmp_path / run)
    t.data_paths = (str(a), str(b))
    return t


def all_reports(trainer, **kw):
    return list(trainer.run(**kw))


def test_a_colour_map_starts_its_generators_at_lr_map_and_its_critics_at_lr(tmp_path, monkeypatch):
    import engine.training.schedule as schedule

    monkeypatch.setattr(schedule, "FAST_START_STEPS", 2)  # 5× for steps 0-2, 3× at step 3, 1× from step 4
    cfg = tiny_config(netG="colour", max_steps=6, lr=2e-4, lr_map=1e-3, eval_every=100, preview_every=100,
                      monitor=False)
    t = trainer_for(tmp_path, cfg)
    prog = [r for r in all_reports(t) if isinstance(r, ProgressReport)]
    # the linear decay halves both rates from step 3 (n_epochs 1, n_epochs_decay 1); report k carries step k-1's
    assert [r.lr for r in prog] == pytest.approx([1e-3, 1e-3, 1e-3, 3e-4, 1e-4, 1e-4])
    assert t.state.opt_D.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert t.state.opt_G.param_groups[0]["lr"] == pytest.approx(1e-4)


@pytest.mark.parametrize("family, ratio", [("colour", 0.3), ("local", 0.3), ("resnet", 1.0)])
def test_the_per_pixel_families_weigh_the_cycle_by_lambda_cyc_map(tmp_path, family, ratio):
    """Step 1's losses come from the same initial weights and batch, so the cycle and identity terms of
    λ_map 3 are 3/10 of λ 10's for the colour and local maps, and unchanged for the ResNet; the adversarial
    terms are the same."""
    first = {}
    for lam_map in (0.0, 3.0):
        cfg = tiny_config(netG=family, max_steps=1, lambda_cyc=10.0, lambda_cyc_map=lam_map, eval_every=100,
                          preview_every=100, monitor=False)
        assert cfg.cycle_weight == (lam_map if lam_map and family != "resnet" else 10.0)
        reps = all_reports(trainer_for(tmp_path, cfg, run=f"run{lam_map}"))
        first[lam_map] = next(r for r in reps if isinstance(r, ProgressReport)).metrics
    for k in ("cycle_A", "cycle_B", "idt_A", "idt_B"):
        assert first[3.0][k] == pytest.approx(ratio * first[0.0][k], rel=1e-5), k
    for k in ("G_A", "G_B"):
        assert first[3.0][k] == pytest.approx(first[0.0][k], rel=1e-5), k


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "wgan-clip", "wgan-gp"])
def test_each_objective_trains_and_reports(tmp_path, mode):
    cfg = tiny_config(gan_mode=mode, max_steps=3, n_critic=2)
    reps = all_reports(trainer_for(tmp_path, cfg))
    prog = [r for r in reps if isinstance(r, ProgressReport)]
    assert [r.step for r in prog] == [1, 2, 3]
    keys = {"G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B", "idt_A", "idt_B"}
    if mode in WASSERSTEIN_MODES:
        keys |= {"w_A", "w_B"}
    assert keys <= set(prog[-1].metrics)
    assert all(math.isfinite(v) for r in prog for v in r.metrics.values())
    fin = reps[-1]
    assert isinstance(fin, FinishedReport) and fin.reason == "completed" and fin.step == 3


def test_run_folder_contents(tmp_path):
    cfg = tiny_config(max_steps=4, val_fraction=0.2, val_min=1, gan_mode="wgan-gp", n_critic=1)
    t = trainer_for(tmp_path, cfg)
    reps = all_reports(t)
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["data"]["crop_size"] == 32
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    progress = [r for r in rows if r["type"] == "progress"]
    assert [r["step"] for r in progress] == [1, 2, 3, 4] and "cycle_A" in progress[0]
    evals = [r for r in rows if r["type"] == "eval"]
    assert evals and {"w_A_val", "w_B_val", "gp_grad_norm_A_val", "gp_grad_norm_B_val"} <= set(evals[0])
    assert sorted(p.name for p in (run / "previews").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    assert (run / "checkpoints" / "latest.pt").exists()
    ck = load_checkpoint(run)
    assert ck["step"] == 4
    assert set(ck["models"]) == {"G", "F", "D_A", "D_B", "G_ema", "F_ema"}  # cpu-quick's studio recipe averages G
    assert {"optim", "pool", "rng", "scheduler", "config"} <= set(ck)
    previews = [r for r in reps if isinstance(r, PreviewReport)]
    img = previews[-1].images
    assert set(img) == {"real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"}
    assert img["fake_B"].dtype.name == "uint8" and img["fake_B"].shape[1:] == (32, 32, 3)
    assert any(isinstance(r, EvalReport) for r in reps)


@pytest.mark.parametrize("mode", ["lsgan", "wgan-gp"])
def test_resume_continues_exactly(tmp_path, mode):
    """2N steps in one go == N steps, checkpoint, fresh process state, N more steps."""
    cfg = tiny_config(gan_mode=mode, n_critic=2, save_every=100, pool_size=2, ema_decay=0.9)
    n = 4
    one = trainer_for(tmp_path / "one", cfg)
    all_reports(one, stop_at=2 * n)

    first = trainer_for(tmp_path / "two", cfg)
    all_reports(first, stop_at=n)
    torch.manual_seed(12345)  # disturb the global RNG: resume must not depend on it
    second = Trainer.resume_run(tmp_path / "two" / "run", device="cpu")
    assert second.step == n
    all_reports(second, stop_at=2 * n)
    for name in ("G", "F", "D_A", "D_B", "G_ema"):
        a, b = getattr(one.state, name).state_dict(), getattr(second.state, name).state_dict()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k} differs after resume"


def test_lr_schedule_matches_reference():
    # 2 + 2 epochs of 10 steps: lr ×1 for epochs 0–1, then 1 − (e + 1 − 2)/3 for e = 2, 3.
    got = [lr_multiplier(s, 40, 2, 2) for s in (0, 19, 20, 30, 39)]
    assert got == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3, 1 / 3])
    assert lr_multiplier(5, 10, 0, 0) == 1.0


def test_stop_from_another_thread_saves_a_checkpoint(tmp_path):
    cfg = tiny_config(max_steps=10_000, save_every=10_000)
    t = trainer_for(tmp_path, cfg)
    seen = []
    for rep in t.run():
        seen.append(rep)
        if isinstance(rep, ProgressReport) and rep.step == 3:
            threading.Thread(target=t.stop).start()
    fin = seen[-1]
    assert isinstance(fin, FinishedReport) and fin.reason == "stopped"
    assert 3 <= fin.step <= 5
    assert load_checkpoint(fin.checkpoint)["step"] == fin.step


def test_pause_blocks_at_a_step_boundary_then_resumes(tmp_path):
    cfg = tiny_config(max_steps=6)
    t = trainer_for(tmp_path, cfg)
    gen = t.run()
    rep = next(r for r in gen if isinstance(r, ProgressReport))
    assert rep.step == 1
    t.pause()
    done = threading.Event()
    result = []

    def consume():
        result.append(next(gen))
        done.set()

    th = threading.Thread(target=consume)
    th.start()
    assert not done.wait(0.5)  # paused: no next report
    assert t.step == 1
    t.resume()
    assert done.wait(30)
    th.join()
    assert result[0].step == 2
    list(gen)
    assert t.step == 6


def test_identity_passes_are_skipped_when_lambda_id_is_zero(tmp_path):
    sizes = []
    for lam in (0.5, 0.0):
        cfg = tiny_config(max_steps=1, lambda_id=lam)
        t = trainer_for(tmp_path / str(lam), cfg)
        batch = []
        h = t.state.G.register_forward_hook(lambda m, i, o, batch=batch: batch.append(i[0].shape[0]))
        all_reports(t)
        h.remove()
        sizes.append(batch[0])
    assert sizes == [3, 2]  # G([a; F(b); b]) with identity, G([a; F(b)]) without


def test_time_limit_stops_cleanly_with_a_checkpoint(tmp_path, monkeypatch):
    import engine.training.trainer as tr

    # A fake clock that advances 1 s per reading: the 3-second limit passes after a few steps,
    # however loaded the machine is.
    clock = iter(range(10**9))
    monkeypatch.setattr(tr.time, "perf_counter", lambda: float(next(clock)))
    cfg = tiny_config(max_steps=100_000, time_limit=0.05)  # 3 s
    reps = all_reports(trainer_for(tmp_path, cfg))
    fin = reps[-1]
    assert fin.reason == "time-limit" and fin.checkpoint and "time limit of 0.05 min" in fin.message
    assert 0 < fin.step < 10
    assert load_checkpoint(fin.checkpoint)["step"] == fin.step


def test_nan_skips_updates_then_rolls_back_and_halves_lr(tmp_path, monkeypatch):
    cfg = tiny_config(max_steps=12, save_every=2)
    t = trainer_for(tmp_path, cfg)
    real_step = Trainer.train_step
    calls = {"n": 0}

    def poisoned(self, a, b):
        calls["n"] += 1
        if 3 <= calls["n"] <= 7:  # five poisoned steps in a row
            a = a * float("nan")
        return real_step(self, a, b)

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    reps = all_reports(t)
    warnings = [r for r in reps if isinstance(r, WarningReport)]
    assert [w.code for w in warnings].count("nan") == 5
    rb = [w for w in warnings if w.code == "rollback"]
    assert len(rb) == 1 and "rolled back to step 2" in rb[0].message
    assert t.state.lr_scale == 0.5 and t.state.fault_count == 5
    assert all(torch.isfinite(p).all() for p in t.state.G.parameters())
    assert reps[-1].reason == "completed"


def test_out_of_memory_stops_with_advice_and_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config(max_steps=10, save_every=100)
    t = trainer_for(tmp_path, cfg)
    real_step = Trainer.train_step

    def oom(self, a, b):
        if self.step == 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_step(self, a, b)

    monkeypatch.setattr(Trainer, "train_step", oom)
    reps = all_reports(t)
    fin = reps[-1]
    assert fin.reason == "error" and "smaller crop size or batch size" in fin.message
    assert load_checkpoint(fin.checkpoint)["step"] == 2


def test_save_failure_pauses_and_reports(tmp_path, monkeypatch):
    from engine.io import checkpoint_files as ckmod

    cfg = tiny_config(max_steps=6, save_every=2)
    t = trainer_for(tmp_path, cfg)

    def full(path, payload):
        raise ckmod.CheckpointError(f"could not write {path}: No space left on device")

    monkeypatch.setattr(ckmod, "save_checkpoint", full)
    gen = t.run()
    rep = next(r for r in gen if isinstance(r, WarningReport))
    assert rep.code == "save-failed" and "No space left on device" in rep.message and rep.severity == "error"
    assert t.paused
    assert not list((tmp_path / "run" / "checkpoints").glob("*.pt"))
    t.stop()
    list(gen)


def test_checkpoint_report_and_keep_k(tmp_path):
    cfg = tiny_config(max_steps=8, save_every=2, keep_checkpoints=2)
    reps = all_reports(trainer_for(tmp_path, cfg))
    assert [r.step for r in reps if isinstance(r, CheckpointReport)] == [2, 4, 6, 8]
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["latest.pt", "step_0000006.pt", "step_0000008.pt"]


def test_tensorboard_option_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    cfg = tiny_config(max_steps=2, tensorboard=True)
    all_reports(trainer_for(tmp_path, cfg))
    events = list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_data_folder_deleted_mid_run_stops_with_checkpoint(tmp_path, monkeypatch):
    import shutil

    cfg = tiny_config(max_steps=50, save_every=100)
    t = trainer_for(tmp_path, cfg)
    reps = []
    for rep in t.run():
        reps.append(rep)
        if isinstance(rep, ProgressReport) and rep.step == 2:
            shutil.rmtree(tmp_path / "B")
    fin = reps[-1]
    assert fin.reason == "error" and str(tmp_path / "B") in fin.message
    assert load_checkpoint(fin.checkpoint)["step"] == fin.step >= 2


def test_save_request_is_honoured_while_paused(tmp_path):
    cfg = tiny_config(max_steps=6, save_every=100)
    t = trainer_for(tmp_path, cfg)
    gen = t.run()
    next(r for r in gen if isinstance(r, ProgressReport) and r.step == 2)
    t.pause()
    t.request_save()
    rep = next(r for r in gen if not isinstance(r, (EvalReport, PreviewReport)))  # step 2's own reports first
    assert isinstance(rep, CheckpointReport) and rep.step == 2 and t.paused and t.step == 2
    t.resume()
    assert list(gen)[-1].step == 6


@pytest.mark.parametrize("mode,upsample", [("lsgan", "transpose"), ("wgan-gp", "transpose"), ("lsgan", "resize")])
def test_speed_options_keep_the_mathematics(tmp_path, mode, upsample):
    """channels_last changes speed, not results.

    The first step's losses and gradients agree to float tolerance. After 3 steps the losses
    agree to 2%: Adam's first updates are ≈ lr·sign(g), so a gradient component that rounding
    moves across zero flips a whole lr-sized update; that is float noise, not a change of maths.
    """
    runs = []
    for cl in (False, True):
        cfg = tiny_config(max_steps=3, gan_mode=mode, n_critic=2, channels_last=cl, upsample=upsample)
        t = trainer_for(tmp_path / str(cl), cfg)
        if cl:  # the option really is on where it is safe (critics always; resize-conv generators)
            # Read the stored weight: reading a spectral-normed .weight runs a power iteration.
            conv = t.state.D_A.model[0]
            w = conv.parametrizations.weight.original if hasattr(conv, "parametrizations") else conv.weight
            assert w.is_contiguous(memory_format=torch.channels_last)
            assert t.speed.channels_last_generators == (upsample == "resize")
        a, b = t.batches.batch(0)
        first = t.train_step(a, b).metrics
        grads = [p.grad.detach().clone() for p in t.state.G.parameters()]
        t.state.step = 1
        later = [t.train_step(*t.batches.batch(s)).metrics for s in (1, 2)]
        runs.append((first, grads, later[-1]))
    (f0, g0, l0), (f1, g1, l1) = runs
    for k in f0:
        assert f0[k] == pytest.approx(f1[k], rel=1e-5, abs=1e-6), k
    scale = max(float(x.abs().max()) for x in g0)  # biases before instance norm have ~0 gradient: rounding only
    for x, y in zip(g0, g1):
        assert torch.allclose(x, y, rtol=1e-3, atol=1e-4 * scale)  # fp32 summation order differs by layout
    for k in l0:
        assert l0[k] == pytest.approx(l1[k], rel=2e-2, abs=1e-3), k


def test_batched_generator_passes_equal_separate_passes(tmp_path):
    """The step's own batched passes, F([b; a]) and G([a; F(b); b]) sliced by the step, equal one call
    per input: instance norm is per image, so batching changes nothing, and each slice is the right one.

    The paper recipe: an instance-norm generator without the input skip, so that G is far from the
    identity at initialisation (an identity G would make every comparison below trivially true)."""
    cfg = with_recipe(tiny_config(max_steps=1, batch_size=2), "paper").with_values(batch_size=2)
    assert cfg.model.norm == "instance" and not cfg.model.input_skip and cfg.objective.lambda_id > 0
    t = trainer_for(tmp_path, cfg)
    a, b = t.batches.batch(0)
    G, F = t.state.G, t.state.F
    with torch.no_grad():
        p = t.step_fn.generator_passes(a, b)
        fake_b, fake_a = G(a), F(b)
        expected = {"fake_b": fake_b, "fake_a": fake_a, "rec_a": F(fake_b), "rec_b": G(fake_a), "idt_b": G(b),
                    "idt_a": F(a)}
    assert (fake_b - a).abs().mean() > 0.1  # G is not the identity
    for name, want in expected.items():
        torch.testing.assert_close(getattr(p, name), want, rtol=1e-5, atol=1e-5, msg=name)
    # and each image's result does not depend on the others in its batch
    with torch.no_grad():
        one_by_one = torch.cat([G(a[i:i + 1]) for i in range(len(a))])
    torch.testing.assert_close(one_by_one, fake_b, rtol=1e-5, atol=1e-5)


def test_generator_ema_follows_the_warmed_up_recursion(tmp_path):
    """ema ← d·ema + (1 − d)·w after each G step, with d = min(decay, (1 + s) / (10 + s)) after s steps."""
    import copy

    t = trainer_for(tmp_path, tiny_config(ema_decay=0.999, max_steps=100, save_every=100))
    decays = [ema_decay_at(t.cfg.model.ema_decay, s) for s in (0, 1, 990, 10_000)]
    assert decays == pytest.approx([0.1, 2 / 11, 0.991, 0.999])
    expected = copy.deepcopy(t.state.G.state_dict())
    for s in range(3):
        all_reports(t, stop_at=s + 1)
        assert t.step == s + 1
        d = min(0.999, (1 + s) / (10 + s))
        w = t.state.G.state_dict()
        for k in expected:
            if expected[k].is_floating_point():
                expected[k] = d * expected[k] + (1 - d) * w[k]
    got = t.state.G_ema.state_dict()
    for k in expected:
        if expected[k].is_floating_point():
            torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-6)
    assert t.state.inference_generators()[0] is t.state.G_ema


# --- train for N minutes ---------------------------------------------------------------------------

def test_schedule_fits_the_learning_rate_and_the_average_into_the_budget():
    cfg = tiny_config(n_epochs=1, n_epochs_decay=1, max_steps=1000, ema_decay=0.999, ema_horizon=0.1)
    s = Schedule(cfg, steps_per_epoch=10)
    assert s.total_steps == 1000 and not s.timed
    assert [s.lr_multiplier(k, 0.0) for k in (0, 499, 500, 999)] == pytest.approx([1, 1, 0.5, 0.5])
    assert s.progress(250, 123.0) == 0.25 and s.done(1000, 0.0) and not s.done(999, 1e9)
    # The average covers at most a tenth of the run: decay ≤ 1 − 1/100, after the warm-up.
    assert s.ema_decay_for(5000, 0.0) == pytest.approx(0.99) and s.ema_decay_for(3, 0.0) == pytest.approx(4 / 13)
    timed = Schedule(cfg.with_values(minutes=2.0), steps_per_epoch=10)  # minutes win over max_steps
    assert timed.timed and timed.total_steps == 0
    assert timed.progress(7, 30.0) == 0.25
    assert timed.lr_multiplier(7, 59.0) == 1.0 and timed.lr_multiplier(7, 61.0) == 0.5
    assert timed.estimated_total(300, 60.0) == 600 and timed.remaining_s(300, 60.0, 5.0) == 60.0
    # 300 steps in 110 of 120 s: the pace predicts 327 steps, a tenth of which the average may span.
    assert timed.ema_decay_for(300, 110.0) == pytest.approx(1 - 1 / 32.7)
    assert timed.done(10, 120.0) and not timed.done(10, 119.0)


def test_a_minutes_budget_ends_completed_and_decayed_with_a_checkpoint(tmp_path):
    cfg = tiny_config(minutes=0.02, max_steps=10**6, save_every=10**6, log_every=1)  # 1.2 s of training
    t = trainer_for(tmp_path, cfg)
    t0 = time.perf_counter()
    reps = all_reports(t)
    fin, prog = reps[-1], [r for r in reps if isinstance(r, ProgressReport)]
    assert fin.reason == "completed" and fin.checkpoint and load_checkpoint(fin.checkpoint)["step"] == fin.step
    assert 1.2 <= t.state.elapsed_s < 1.2 + 1.0 and time.perf_counter() - t0 >= 1.2
    # 1 + 1 epochs: the second half of the budget runs at half the rate (the reference's stairs).
    assert prog[0].lr == pytest.approx(2e-4) and prog[-1].lr == pytest.approx(1e-4)
    assert prog[-1].progress > 0.85  # the last within a step of the end
    # Progress is the share of the minutes: it only grows, and the rate halves where it passes one half, however
    # unevenly the steps fell in time (a loaded machine makes the first steps slow; a count of reports would not).
    shares = [r.progress for r in prog]
    assert shares == sorted(shares)
    # A step's rate is set from the clock at its start, between the report before it and its own.
    assert all(r.lr == pytest.approx(2e-4) for r in prog if r.progress < 0.5)
    assert all(r.lr == pytest.approx(1e-4) for before, r in zip(prog, prog[1:]) if before.progress >= 0.5)
    assert prog[-1].eta_s < 0.2 * 60 * 0.02 and prog[-1].total_steps >= fin.step - 1


def test_pausing_does_not_count_against_the_budget(tmp_path):
    cfg = tiny_config(minutes=0.02, max_steps=10**6, save_every=10**6)
    t = trainer_for(tmp_path, cfg)
    gen = t.run()
    next(r for r in gen if isinstance(r, ProgressReport))
    t.pause()
    threading.Timer(1.5, t.resume).start()
    t0 = time.perf_counter()
    fin = list(gen)[-1]
    assert fin.reason == "completed" and time.perf_counter() - t0 >= 1.5
    assert t.state.elapsed_s < 1.2 + 1.0  # the 1.5 s paused are not training time


def test_resume_continues_the_same_budget(tmp_path):
    cfg = tiny_config(minutes=0.03, max_steps=10**6, save_every=10**6)  # 1.8 s
    t = trainer_for(tmp_path, cfg)
    for rep in t.run():
        if isinstance(rep, ProgressReport) and rep.elapsed_s > 0.6:
            t.stop()
    assert rep.reason == "stopped" and 0.6 < t.state.elapsed_s < 1.8
    first = t.step
    again = Trainer.resume_run(tmp_path / "run", device="cpu")
    assert again.state.elapsed_s == pytest.approx(t.state.elapsed_s, abs=0.2)  # as of the last checkpoint
    fin = all_reports(again)[-1]
    assert fin.reason == "completed" and fin.step > first and 1.8 <= again.state.elapsed_s < 1.8 + 1.0


def test_a_generator_that_cannot_leave_the_identity_is_reported(tmp_path):
    """A skip generator starts as the identity; with a learning rate too small to move it while the
    discriminators learn at full speed, it stays there, and the watch says so."""
    cfg = tiny_config(max_steps=240, input_skip=True, norm="none", lambda_id=0.0, lr=1e-7, lr_D=2e-4, eval_every=40,
                      val_fraction=0.3, val_min=2, log_every=10, save_every=10**6, preview_every=10**6)
    reps = all_reports(trainer_for(tmp_path, cfg))
    stuck = [r for r in reps if isinstance(r, WarningReport) and r.code.startswith("stuck-")]
    assert {r.code for r in stuck} == {"stuck-AtoB", "stuck-BtoA"} and all(r.step >= 120 for r in stuck)


def test_bf16_autocast_keeps_the_first_steps_losses_and_gradients(tmp_path):
    """bf16 has an 8-bit mantissa (relative rounding 2⁻⁹ ≈ 0.2 %, more after long sums): the first step's
    losses agree with fp32 within 3 %, and each weight's gradient points the same way (cosine ≥ 0.9) with a
    norm within 20 % (measured: cosine 0.93–0.99, norms within 14 %). Biases that feed an instance norm have
    a true gradient of 0 (the norm removes them), so theirs are rounding noise either way and are not
    compared. Weights and optimiser state stay fp32. (On a CPU without native bf16 the arithmetic is
    emulated; it is the same arithmetic.)"""
    runs = []
    for amp in ("off", "on"):
        cfg = with_recipe(tiny_config(max_steps=1), "paper").with_values(amp=amp)
        t = trainer_for(tmp_path / amp, cfg)
        assert t.speed.amp == (amp == "on")
        a, b = t.batches.batch(0)
        metrics = t.train_step(a, b).metrics
        runs.append((metrics, {n: p.grad.detach().clone() for n, p in t.state.G.named_parameters()}))
        assert all(p.dtype == torch.float32 for p in t.state.G.parameters())
    (m0, g0), (m1, g1) = runs
    for k in ("G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B", "idt_A", "idt_B"):
        assert m1[k] == pytest.approx(m0[k], rel=3e-2, abs=1e-3), k
    weights = [n for n in g0 if n.endswith("weight")]
    assert len(weights) >= 8
    for n in weights:
        cos = torch.nn.functional.cosine_similarity(g0[n].flatten(), g1[n].flatten(), dim=0)
        assert cos >= 0.9 and 0.8 <= float(g1[n].norm() / g0[n].norm()) <= 1.2, n


@pytest.mark.parametrize("native", [True, False])
def test_amp_auto_computes_in_bf16_exactly_where_the_cpu_has_native_bf16(tmp_path, monkeypatch, native):
    """``amp=auto`` follows ``engine.devices.native_bf16``: bf16 on a CPU that has it, fp32 on one that would
    emulate it; ``on`` and ``off`` do as they say on either kind."""
    from engine import devices

    monkeypatch.setattr(devices, "native_bf16", lambda d: native)
    for amp, expected in (("auto", native), ("on", True), ("off", False)):
        assert SpeedOptions(tiny_config(amp=amp), torch.device("cpu")).amp is expected, amp


def test_amp_auto_on_this_machine_matches_its_cpu_flags(pytestconfig):
    """What ``auto`` resolves to on the machine at hand, next to what /proc/cpuinfo says (or, with
    --native-bf16 yes|no, to the kind of CPU the suite stands in for)."""
    from engine import devices

    choice = pytestconfig.getoption("--native-bf16")
    flags = devices._cpu_flags()
    machine = bool({"avx512_bf16", "amx_bf16"} & flags) or devices._macos_arm_bf16()
    expected = machine if choice == "machine" else choice == "yes"
    assert SpeedOptions(tiny_config(amp="auto"), torch.device("cpu")).amp is expected
