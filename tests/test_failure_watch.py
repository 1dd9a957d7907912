"""The failure watch fires on each forced failure, once, with a hint, and stays quiet on a healthy run."""

from engine.config import Config
from engine.training.failure_watch import FailureWatch


def feed(watch, rows):
    out = []
    for i, m in enumerate(rows):
        out += watch.observe(i, m)
    return out


HEALTHY = {"G_A": 0.5, "G_B": 0.5, "D_A": 0.25, "D_B": 0.25, "cycle_A": 1.0, "cycle_B": 1.0}


def test_quiet_on_a_healthy_run():
    assert feed(FailureWatch(Config()), [HEALTHY] * 100) == []


def test_discriminator_won():
    rows = [dict(HEALTHY, D_B=0.001)] * 25
    w = feed(FailureWatch(Config(), patience=20), rows)
    assert [x.code for x in w] == ["d-won-D_B"] and "discriminator has won" in w[0].message and w[0].hint


def test_w_exploding_and_collapsing():
    cfg = Config().with_values(gan_mode="wgan-gp")
    w = feed(FailureWatch(cfg), [dict(HEALTHY, w_A=1.0, w_B=5e3)])
    assert [x.code for x in w] == ["w-explode-w_B"]
    w = feed(FailureWatch(cfg, patience=5), [dict(HEALTHY, w_A=-0.1, w_B=1.0)] * 6)
    assert [x.code for x in w] == ["w-collapse-w_A"]


def test_nan_in_a_loss():
    w = feed(FailureWatch(Config()), [dict(HEALTHY, G_A=float("nan"))])
    assert w[0].code == "nan" and "G_A" in w[0].message


def test_cycle_loss_rising_steadily():
    # cycle_A + cycle_B by window: 2, 2.5, 3.25, 4.375: up every window, to 2.2× the lowest.
    rows = [dict(HEALTHY, cycle_A=1.0 * 1.5 ** (i // 10)) for i in range(40)]
    w = feed(FailureWatch(Config(), window=10), rows)
    assert [x.code for x in w] == ["cycle-rising"] and w[0].hint.endswith("raise λ cycle.")
    # A colour map's cycle is weighed by λ cycle (colour/local): the hint names the field that acts.
    w = feed(FailureWatch(Config().with_values(netG="colour", lambda_cyc_map=3.0), window=10), rows)
    assert [x.code for x in w] == ["cycle-rising"] and w[0].hint.endswith("raise λ cycle (colour/local).")
    # A healthy run's early trade (measured on the suite: 6.2 → 7.7 over a few hundred steps) is a
    # steady rise too, but only to 1.33× its lowest (< CYCLE_RISE = 1.5): quiet.
    early = [dict(HEALTHY, cycle_A=3.1 * 1.1 ** (i // 10), cycle_B=3.1 * 1.1 ** (i // 10)) for i in range(40)]
    assert feed(FailureWatch(Config(), window=10), early) == []
    # The lowest is the run's, not the window's: the same early trade after a long low stretch fires.
    low_first = [dict(HEALTHY, cycle_A=2.0, cycle_B=2.0)] * 40 + early
    assert [x.code for x in feed(FailureWatch(Config(), window=10), low_first)] == ["cycle-rising"]
    # A rise from a near-perfect cycle (a skip generator leaving the identity) stays quiet:
    # it ends at 0.34 < 0.1 · λ_cyc = 1.
    low = [dict(HEALTHY, cycle_A=0.1 * 1.5 ** (i // 10), cycle_B=0.0) for i in range(40)]
    assert feed(FailureWatch(Config(), window=10), low) == []


def test_discriminator_won_uses_the_objectives_chance_level():
    lsgan = Config().with_values(log_every=10)  # 300 steps = 30 reports
    w = feed(FailureWatch(lsgan), [dict(HEALTHY, D_A=0.04)] * 31)
    assert [x.code for x in w] == ["d-won-D_A"]
    assert feed(FailureWatch(lsgan), [dict(HEALTHY, D_A=0.04)] * 29) == []  # not yet hundreds of steps
    assert feed(FailureWatch(lsgan), [dict(HEALTHY, D_A=0.1)] * 100) == []  # winning, not won
    vanilla = lsgan.with_values(gan_mode="vanilla")  # chance is log 2 = 0.69 there
    assert [x.code for x in feed(FailureWatch(vanilla), [dict(HEALTHY, D_B=0.12)] * 31)] == ["d-won-D_B"]


def evals(watch, rows, losses=HEALTHY):
    out = []
    for i, ev in enumerate(rows):
        watch.observe(i, losses)
        out += watch.observe_eval(i, ev)
    return out


STILL = {"gap_AtoB": 0.002, "gap_BtoA": 0.2, "saturated_AtoB": 0.0, "saturated_BtoA": 0.0, "saturated_real_A": 0.0,
         "saturated_real_B": 0.0}


def test_a_generator_stuck_at_the_identity_is_named():
    rejected = dict(HEALTHY, G_A=0.9)  # D_B still rejects G's output
    w = evals(FailureWatch(Config()), [STILL] * 3, rejected)
    assert [x.code for x in w] == ["stuck-AtoB"] and "G (A→B) returns its input unchanged" in w[0].message and w[0].hint
    assert evals(FailureWatch(Config()), [STILL] * 2, rejected) == []  # not for three evaluations yet
    # Close to the identity and fooling D: not stuck.
    assert evals(FailureWatch(Config()), [STILL] * 5, dict(HEALTHY, G_A=0.2)) == []
    assert evals(FailureWatch(Config()), [dict(STILL, gap_AtoB=0.05)] * 5, rejected) == []  # moving
    wgan = Config().with_values(gan_mode="wgan-gp")
    assert [x.code for x in evals(FailureWatch(wgan), [STILL] * 3, dict(HEALTHY, w_B=2.0, w_A=1.0))] == ["stuck-AtoB"]


def test_saturated_output_is_named_unless_the_target_is_saturated_too():
    w = evals(FailureWatch(Config()), [dict(STILL, gap_AtoB=0.3, saturated_AtoB=0.8, saturated_real_B=0.1)])
    assert [x.code for x in w] == ["saturated-AtoB"] and "80%" in w[0].message
    # A pencil sketch is mostly white: as saturated as the real sketches, so nothing is wrong.
    assert evals(FailureWatch(Config()), [dict(STILL, gap_AtoB=0.3, saturated_AtoB=0.9, saturated_real_B=0.85)]) == []
