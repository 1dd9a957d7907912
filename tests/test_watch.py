"""The failure watch fires on each forced failure, once, with a hint, and stays quiet on a healthy run."""

from engine.config import Config
from engine.training.watch import FailureWatch


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
    rows = [dict(HEALTHY, cycle_A=1.0 * 1.1 ** (i // 10)) for i in range(40)]
    w = feed(FailureWatch(Config(), window=10), rows)
    assert [x.code for x in w] == ["cycle-rising"]
    # The same rise from a near-perfect cycle (a skip generator leaving the identity) stays quiet:
    # it ends at 0.133 < 0.1 · λ_cyc = 1.
    low = [dict(HEALTHY, cycle_A=0.1 * 1.1 ** (i // 10), cycle_B=0.0) for i in range(40)]
    assert feed(FailureWatch(Config(), window=10), low) == []
