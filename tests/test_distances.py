"""engine.wasserstein: closed forms checked exactly and against samples; the critic's W1 estimate
checked against the exact W1 and against the derived biases of each method."""

from __future__ import annotations

import argparse
import json
import math
from statistics import NormalDist

import numpy as np
import pytest
import torch

from engine.models.objectives import gradient_penalty
from engine.tools.distances import add_cli, run_cli
from engine.wasserstein import critic as C
from engine.wasserstein import distances as D
from engine.wasserstein.critic import (
    DEFAULT_SAMPLES,
    CriticProgress,
    MLPCritic,
    critic_curve,
    critic_grid,
    estimate_w1,
)
from engine.wasserstein.distances import (
    CASES,
    Divergences,
    gauss_scale,
    gauss_shift,
    parallel_lines,
    parallel_lines_curves,
    translate,
    uniform,
)

LOG2 = math.log(2)
PHI = NormalDist().cdf


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The critic's ops are tiny; two threads on a busy 2-core machine run ~10× slower than one."""
    with C.torch_threads(1):
        yield


def samples(case: str, param: float, n: int = DEFAULT_SAMPLES, seed: int = 0):
    return CASES[case].sample(n, param, torch.Generator().manual_seed(seed))


def w1_sorted(p: torch.Tensor, q: torch.Tensor) -> float:
    """1-D W1 between two equal-size samples: the quantile coupling pairs sorted values."""
    return float((torch.sort(p.reshape(-1)).values - torch.sort(q.reshape(-1)).values).abs().double().mean())


def gauss_logpdf(x, mu, s):
    return -np.log(s) - 0.5 * np.log(2 * np.pi) - 0.5 * ((x - mu) / s) ** 2


def js_monte_carlo(xp, xq, logp, logq) -> float:
    """½E_P[log 2p/(p+q)] + ½E_Q[log 2q/(p+q)] from samples of each."""
    def term(x, own):
        lp, lq = logp(x), logq(x)
        return np.mean((lp if own == "p" else lq) - np.logaddexp(lp, lq) + LOG2)
    return 0.5 * term(xp, "p") + 0.5 * term(xq, "q")


# --- closed forms -----------------------------------------------------------------------------
@pytest.mark.parametrize("theta", [-2.0, 0.5, 1.5, 3.0])
def test_parallel_lines_closed_form(theta):
    assert parallel_lines(theta) == Divergences(w=abs(theta), tv=1.0, kl=math.inf, js=LOG2)


def test_parallel_lines_all_zero_at_theta_zero():
    assert parallel_lines(0.0) == Divergences(0.0, 0.0, 0.0, 0.0)


def test_parallel_lines_curves_match_pointwise():
    thetas = np.linspace(-2, 2, 41)
    curves = parallel_lines_curves(thetas)
    assert set(curves) == {"tv", "kl", "js", "w"}
    for i, t in enumerate(thetas):
        d = parallel_lines(float(t))
        assert (curves["tv"][i], curves["kl"][i], curves["js"][i], curves["w"][i]) == (d.tv, d.kl, d.js, d.w)
    assert np.isinf(curves["kl"]).sum() == 40 and curves["kl"][20] == 0.0  # θ = 0 is the middle point


@pytest.mark.parametrize("delta_mu", [-2.0, 0.5, 2.0])
def test_gauss_shift_closed_form(delta_mu):
    d = gauss_shift(delta_mu)
    assert math.isclose(d.w, abs(delta_mu))
    assert math.isclose(d.kl, delta_mu ** 2 / 2)
    assert math.isclose(d.tv, 2 * PHI(abs(delta_mu) / 2) - 1, rel_tol=1e-12)
    assert 0 < d.js < LOG2
    # σ scales out: N(0, σ²) vs N(σΔμ, σ²) is the same pair of distributions up to a rescaling
    d3 = gauss_shift(3 * delta_mu, sigma=3.0)
    assert math.isclose(d3.tv, d.tv) and math.isclose(d3.kl, d.kl) and math.isclose(d3.js, d.js, rel_tol=1e-9)


@pytest.mark.parametrize("sigma2", [0.5, 2.0, 3.0])
def test_gauss_scale_closed_form(sigma2):
    d = gauss_scale(1.0, sigma2)
    assert math.isclose(d.w, abs(1 - sigma2) * math.sqrt(2 / math.pi))
    assert math.isclose(d.kl, math.log(sigma2) + 1 / (2 * sigma2 ** 2) - 0.5)
    # TV by brute-force integration of |p − q|/2 (independent of the crossing-point formula)
    x = np.linspace(-40, 40, 800_001)
    tv = 0.5 * np.abs(np.exp(gauss_logpdf(x, 0, 1)) - np.exp(gauss_logpdf(x, 0, sigma2))).sum() * (x[1] - x[0])
    assert math.isclose(d.tv, tv, rel_tol=1e-6)
    assert gauss_scale(1.0, 1.0) == Divergences(0.0, 0.0, 0.0, 0.0)


def test_gauss_js_is_converged_on_its_grid():
    for (m1, s1, m2, s2) in [(0, 1, 0.5, 1), (0, 1, 2, 1), (0, 1, 0, 3), (0, 1, 0, 0.2)]:
        lo, hi = min(m1 - 12 * s1, m2 - 12 * s2), max(m1 + 12 * s1, m2 + 12 * s2)
        fine = D._js_numeric(D._gauss_logpdf(m1, s1), D._gauss_logpdf(m2, s2), lo - 5, hi + 5, min(s1, s2) / 400)
        assert math.isclose(D._js_gauss(m1, s1, m2, s2), fine, rel_tol=1e-9)


def test_uniform_closed_form():
    d = uniform(2.0)
    assert d.w == 0.5 and d.tv == 0.5
    assert math.isclose(d.kl, LOG2)
    assert math.isclose(d.js, 0.75 * math.log(4 / 3))
    # KL(Q‖P) for U[0,1] vs U[0,2] is KL(U[0,2]‖U[0,1]) = KL(U[0,1]‖U[0,1/2]) by rescaling: ∞
    r = uniform(0.5)
    assert r.kl == math.inf and r.w == 0.25
    assert math.isclose(r.tv, d.tv) and math.isclose(r.js, d.js)
    assert uniform(1.0) == Divergences(0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("norm_v,dim", [(0.5, 2), (3.0, 2), (1.0, 5)])
def test_translate_closed_form(norm_v, dim):
    d, g = translate(norm_v, dim), gauss_shift(norm_v)
    assert d.w == norm_v and (d.tv, d.kl, d.js) == (g.tv, g.kl, g.js)


@pytest.mark.parametrize("call", [lambda: gauss_scale(1.0, 0.0), lambda: gauss_scale(-1.0, 1.0),
                                  lambda: uniform(0.0), lambda: uniform(-2.0), lambda: translate(-1.0, 2),
                                  lambda: translate(1.0, 0), lambda: parallel_lines(math.nan),
                                  lambda: gauss_shift(math.inf), lambda: gauss_shift(1.0, sigma=0.0)])
def test_closed_forms_reject_bad_parameters(call):
    with pytest.raises(ValueError):
        call()


# --- closed forms against large samples --------------------------------------------------------
@pytest.mark.parametrize("case,param", [("gauss-shift", 0.5), ("gauss-shift", -2.0), ("gauss-scale", 0.5),
                                        ("gauss-scale", 3.0), ("uniform", 2.0), ("uniform", 0.25)])
def test_w1_matches_sorted_samples(case, param):
    p, q = samples(case, param, n=200_000, seed=1)
    exact = CASES[case].exact(param).w
    assert math.isclose(w1_sorted(p, q), exact, rel_tol=0.02, abs_tol=0.003)


@pytest.mark.parametrize("norm_v", [0.5, 3.0])
def test_translate_w1_matches_projected_samples(norm_v):
    # translation is optimal, so W1 equals the W1 of the projections onto the direction of v
    p, q = samples("translate", norm_v, n=200_000, seed=1)
    u = D.translation_direction(2)
    assert math.isclose(w1_sorted(p @ u, q @ u), norm_v, rel_tol=0.02, abs_tol=0.003)


@pytest.mark.parametrize("case,param", [("gauss-shift", 0.5), ("gauss-shift", 2.0), ("gauss-scale", 0.5),
                                        ("gauss-scale", 3.0)])
def test_gaussian_kl_and_js_match_monte_carlo(case, param):
    p, q = (t.reshape(-1).double().numpy() for t in samples(case, param, n=200_000, seed=2))
    mu2, s2 = (param, 1.0) if case == "gauss-shift" else (0.0, param)
    logp = lambda x: gauss_logpdf(x, 0.0, 1.0)  # noqa: E731
    logq = lambda x: gauss_logpdf(x, mu2, s2)  # noqa: E731
    exact = CASES[case].exact(param)
    assert math.isclose(np.mean(logp(p) - logq(p)), exact.kl, rel_tol=0.03, abs_tol=0.005)
    assert math.isclose(js_monte_carlo(p, q, logp, logq), exact.js, rel_tol=0.03, abs_tol=0.003)


@pytest.mark.parametrize("b", [2.0, 1 / 3])
def test_uniform_js_and_tv_match_monte_carlo(b):
    p, q = (t.reshape(-1).double().numpy() for t in samples("uniform", b, n=200_000, seed=3))
    logp = lambda x: np.where((x >= 0) & (x <= 1), 0.0, -np.inf)  # noqa: E731
    logq = lambda x: np.where((x >= 0) & (x <= b), -np.log(b), -np.inf)  # noqa: E731
    exact = uniform(b)
    assert math.isclose(js_monte_carlo(p, q, logp, logq), exact.js, rel_tol=0.03)
    tv = np.mean(np.maximum(0.0, 1 - np.exp(logq(p) - logp(p))))  # TV = E_P[(1 − q/p)⁺]
    assert math.isclose(tv, exact.tv, rel_tol=0.02)


@pytest.mark.parametrize("name", list(CASES))
def test_samplers_are_seeded_shaped_and_validated(name):
    case = CASES[name]
    lo, hi = case.param_range
    p, q = samples(name, case.default_param, n=100, seed=5)
    p2, q2 = samples(name, case.default_param, n=100, seed=5)
    assert p.shape == q.shape == (100, case.dim) and p.dtype == torch.float32
    assert torch.equal(p, p2) and torch.equal(q, q2)
    assert lo <= case.default_param <= hi
    assert isinstance(case.exact(case.default_param), Divergences)
    with pytest.raises(ValueError):
        case.sample(10, math.nan, None)
    slo, shi = case.slider_range
    assert lo <= slo < shi <= hi and slo <= case.default_param <= shi
    assert case.signed == (slo < 0)
    assert case.density is None or case.dim == 1


DENSITY_CASES = [name for name, case in CASES.items() if case.density is not None]


def test_every_built_in_1d_case_has_a_density():
    assert sorted(DENSITY_CASES) == sorted(n for n, c in CASES.items() if c.dim == 1)


def density_params(name):
    case = CASES[name]
    lo, hi = case.param_range
    return [lo, case.default_param, hi, 0.5 * (lo + case.default_param)]


@pytest.mark.parametrize("name,param", [(n, p) for n in DENSITY_CASES for p in density_params(n)])
def test_densities_integrate_to_one(name, param):
    # wide enough for N(0, 4²) and U[0, 4]; fine enough that the uniform's jumps cost < 1e-4
    x = np.linspace(-25.0, 25.0, 2_000_001)
    p, q = CASES[name].density(x, param)
    assert p.shape == q.shape == x.shape and (p >= 0).all() and (q >= 0).all()
    for d in (p, q):
        assert np.trapezoid(d, x) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name,param", [(n, p) for n in DENSITY_CASES for p in density_params(n)])
def test_densities_match_a_histogram_of_the_sampler(name, param):
    case = CASES[name]
    n = 200_000
    p_s, q_s = (t.reshape(-1).double().numpy() for t in case.sample(n, param, torch.Generator().manual_seed(7)))
    for k, xs in enumerate((p_s, q_s)):
        edges = np.linspace(np.quantile(xs, 0.001), np.quantile(xs, 0.999), 41)
        counts, _ = np.histogram(xs, edges)
        # each bin's exact mass: the density integrated over the bin (fine trapezoid, the uniform's jumps included)
        mass = []
        for a, b in zip(edges[:-1], edges[1:]):
            x = np.linspace(a, b, 2001)
            mass.append(np.trapezoid(case.density(x, param)[k], x))
        mass = np.array(mass)
        sd = np.sqrt(mass * (1 - mass) / n)
        assert np.all(np.abs(counts / n - mass) <= 5 * sd + 2e-4), (name, param, "pq"[k])


def test_densities_are_validated_like_the_samplers():
    for name in DENSITY_CASES:
        with pytest.raises(ValueError):
            CASES[name].density(np.zeros(3), math.nan)


# --- the critic's estimate --------------------------------------------------------------------
# The penalties' population optimum on a linear problem: slope s = 1 + W/(2λ), so the reported
# (penalty-free) held-out dual is s·W = W + W²/(2λ). λ = 100 is the default.
def penalty_prediction(w: float, lam: float) -> float:
    return w + w * w / (2 * lam)


@pytest.mark.parametrize("theta", [-2.0, 0.5, 1.5, 3.0])
def test_lp_estimate_within_10_percent_parallel_lines(theta):
    est = estimate_w1(*samples("parallel-lines", theta))
    assert est.method == "lp" and est.w >= 0  # both signs of θ: no flip
    assert abs(est.w - abs(theta)) <= 0.10 * abs(theta)
    # and it is the derived overshoot, not noise: the lines are exactly the linear case
    assert math.isclose(est.w, penalty_prediction(abs(theta), 100.0), rel_tol=0.01)
    assert math.isclose(est.corrected, abs(theta), rel_tol=0.01)


@pytest.mark.parametrize("case,param", [("gauss-shift", -2.0), ("gauss-shift", 0.5), ("gauss-shift", 2.0),
                                        ("translate", 0.5), ("translate", 3.0)])
def test_lp_estimate_within_10_percent(case, param):
    est = estimate_w1(*samples(case, param))
    w = CASES[case].exact(param).w
    assert est.w >= 0 and abs(est.w - w) <= 0.10 * w


@pytest.mark.parametrize("case,param", [("gauss-scale", 2.0), ("uniform", 2.0)])
def test_lp_estimate_follows_nonlinear_1d_critics(case, param):
    # zero-mean Gaussians need a V-shaped critic; the uniforms a ramp that is flat beyond 2
    est = estimate_w1(*samples(case, param))
    w = CASES[case].exact(param).w
    assert abs(est.w - w) <= 0.10 * w


def test_lp_estimate_near_zero_for_equal_distributions():
    est = estimate_w1(*samples("parallel-lines", 0.0))
    assert abs(est.w) < 0.05


@pytest.mark.parametrize("method", ["gp", "lp"])
def test_penalty_overshoot_matches_derivation(method):
    # λ = 1, W = 2: slope 1 + W/(2λ) = 2, held-out dual W + W²/(2λ) = 4 (an overshoot of 2).
    # lp overshoots exactly like gp: with slope > 1 both penalties are active. (400 steps
    # converge here; measured 4.002 and 3.998.)
    est = estimate_w1(*samples("parallel-lines", 2.0), method, lambda_gp=1.0, steps=400)
    assert math.isclose(est.w, penalty_prediction(2.0, 1.0), rel_tol=0.02)
    assert math.isclose(est.grad_norm, 2.0, rel_tol=0.02)
    assert math.isclose(est.corrected, 2.0, rel_tol=0.02)  # dividing by the slope undoes it


def test_gp_locks_in_wrong_sign_lp_does_not():
    # A critic trained on the mirrored problem (what the GUI holds after θ changes sign) has
    # slope ≈ −1. Turning f′ around in 1-D passes through f′ = 0, which the two-sided penalty
    # charges λ for: gp stays near the local maximum s = −1 + W/(2λ), i.e. w ≈ −W + W²/(2λ)
    # = −1.98 (measured −1.97 after 400 steps; it creeps up only slowly, −1.77 after 800).
    # The one-sided penalty is 0 there, so lp turns around and ends at +W.
    p, q = samples("gauss-shift", 2.0)
    mirrored = estimate_w1(q, p, steps=400)
    assert mirrored.w > 1.8
    gp = estimate_w1(p, q, "gp", critic=mirrored.critic, steps=400)
    lp = estimate_w1(p, q, "lp", critic=mirrored.critic, steps=400)
    assert gp.w < -1.6 and gp.corrected < -1.8
    assert abs(lp.w - 2.0) <= 0.2


@pytest.mark.parametrize("case,param", [("parallel-lines", 1.5), ("translate", 3.0)])
def test_clip_estimates_k_times_w_and_gradient_norm_recovers_w(case, param):
    est = estimate_w1(*samples(case, param), "clip")
    assert 0 < est.w < 0.01 * param        # K·W with K ≪ 1
    assert est.grad_norm < 0.01            # K itself, measured
    assert abs(est.corrected - param) <= 0.15 * param  # measured −8.7 % … +1.1 % over 24 runs


def test_gp_penalty_is_the_trainer_gradient_penalty():
    f = MLPCritic(2)
    p, q = samples("translate", 1.0, n=64)
    norms = C._interpolate_grad_norms(f, p, q, torch.Generator().manual_seed(7), create_graph=True)
    gp, mean_norm = gradient_penalty(f, p, q, torch.Generator().manual_seed(7))
    assert torch.allclose(((norms - 1) ** 2).mean(), gp) and torch.allclose(norms.mean(), mean_norm)


def test_estimate_is_deterministic_for_a_seed():
    p, q = samples("translate", 1.0, n=2000)
    a, b = estimate_w1(p, q, steps=30, seed=3), estimate_w1(p, q, steps=30, seed=3)
    c = estimate_w1(p, q, steps=30, seed=4)
    assert (a.w, a.grad_norm, a.history) == (b.w, b.grad_norm, b.history)
    assert a.w != c.w


def test_callback_history_and_should_stop():
    p, q = samples("parallel-lines", 1.0, n=2000)
    seen: list[CriticProgress] = []
    est = estimate_w1(p, q, steps=40, callback=seen.append)
    assert [s.iteration for s in seen] == [10, 20, 30, 40]
    assert est.history == tuple((s.iteration, s.dual) for s in seen) and est.iterations == 40
    assert all(isinstance(s.dual, float) for s in seen)

    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 25

    stopped = estimate_w1(p, q, steps=1000, should_stop=should_stop)
    assert stopped.iterations == 25 and [i for i, _ in stopped.history] == [10, 20]
    assert math.isfinite(stopped.w)  # the critic so far is still measured


def test_warm_start_leaves_the_given_critic_untouched():
    p, q = samples("gauss-shift", 1.0, n=2000)
    first = estimate_w1(p, q, steps=20)
    before = {k: v.clone() for k, v in first.critic.state_dict().items()}
    second = estimate_w1(p, q, steps=20, critic=first.critic)
    assert second.critic is not first.critic
    assert all(torch.equal(before[k], v) for k, v in first.critic.state_dict().items())
    assert not any(prm.requires_grad for prm in second.critic.parameters())
    with pytest.raises(ValueError, match="2-D input"):
        estimate_w1(*samples("gauss-shift", 1.0, n=100), steps=1, critic=MLPCritic(2))


@pytest.mark.parametrize("kwargs,match", [({"method": "wgan"}, "valid choices: clip, gp, lp"),
                                          ({"heldout_fraction": 1.0}, "heldout_fraction"),
                                          ({"steps": -1}, "steps"), ({"lambda_gp": -1.0}, "lambda_gp")])
def test_estimate_rejects_bad_arguments(kwargs, match):
    p, q = samples("translate", 1.0, n=100)
    with pytest.raises(ValueError, match=match):
        estimate_w1(p, q, **kwargs)


def test_estimate_rejects_mismatched_or_bad_samples():
    with pytest.raises(ValueError, match="dimension"):
        estimate_w1(torch.zeros(10, 1), torch.zeros(10, 2))
    with pytest.raises(ValueError, match="NaN"):
        estimate_w1(torch.full((10, 1), math.nan), torch.zeros(10, 1))
    with pytest.raises(ValueError, match="at least 2"):
        estimate_w1(torch.zeros(1, 1), torch.zeros(10, 1))


class _Linear2D(torch.nn.Module):
    in_dim = 2

    def forward(self, x):
        return x[:, 0] + 10 * x[:, 1]


def test_critic_grid_layout_is_rows_y_columns_x():
    grid = critic_grid(_Linear2D(), (-1, 1), (0, 2), n=5)
    xs, ys = np.linspace(-1, 1, 5), np.linspace(0, 2, 5)
    assert grid.shape == (5, 5) and grid.dtype == np.float64 and grid.flags.owndata
    np.testing.assert_allclose(grid, xs[None, :] + 10 * ys[:, None], atol=1e-5)
    with pytest.raises(ValueError, match="critic_curve"):
        critic_grid(MLPCritic(1), (0, 1), (0, 1))


def test_critic_curve_and_trained_critic_views():
    est = estimate_w1(*samples("gauss-shift", 1.0, n=2000), steps=50)
    xs = np.linspace(-3, 4, 11)
    curve = critic_curve(est.critic, xs)
    assert curve.shape == (11,) and curve.dtype == np.float64
    with torch.no_grad():
        np.testing.assert_allclose(curve, est.critic(torch.tensor(xs, dtype=torch.float32)[:, None]).numpy(),
                                   rtol=1e-6)
    with pytest.raises(ValueError, match="critic_grid"):
        critic_curve(MLPCritic(2), xs)
    lines = estimate_w1(*samples("parallel-lines", 1.0, n=2000), steps=50)
    assert critic_grid(lines.critic, (-0.5, 1.5), (0, 1), n=8).shape == (8, 8)


# --- CLI ----------------------------------------------------------------------------------------
def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m engine")
    add_cli(parser.add_subparsers(dest="command"))
    return parser.parse_args(["distances", *argv])


def run_json(capsys, *argv: str) -> dict:
    args = parse(*argv, "--json")
    assert args.func is run_cli and args.func(args) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_json_parallel_lines(capsys):
    out = run_json(capsys, "--case", "parallel-lines", "--param", "1.5", "--steps", "100")
    assert {"w_exact", "w_critic", "tv", "kl", "js", "method"} <= set(out)
    assert out["w_exact"] == 1.5 and out["tv"] == 1.0 and out["kl"] == "inf" and out["js"] == LOG2
    assert out["method"] == "lp" and isinstance(out["w_critic"], float)


def test_cli_json_finite_kl_and_options(capsys):
    out = run_json(capsys, "--case", "gauss-shift", "--param", "2", "--method", "gp", "--lambda", "10",
                   "--steps", "20", "--seed", "1")
    assert out["method"] == "gp" and out["kl"] == 2.0 and math.isclose(out["js"], gauss_shift(2.0).js)
    out = run_json(capsys, "--case", "uniform", "--param", "0.5", "--steps", "10")
    assert out["kl"] == "inf" and out["w_exact"] == 0.25
    out = run_json(capsys, "--case", "uniform", "--steps", "10")  # b defaults to 2
    assert out["w_exact"] == 0.5 and math.isclose(out["kl"], LOG2)
    out = run_json(capsys, "--case", "translate", "--param", "1", "--dim", "3", "--steps", "10")
    assert out["w_exact"] == 1.0


def test_cli_table(capsys):
    args = parse("--case", "gauss-scale", "--param", "2", "--method", "clip", "--steps", "20")
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "W1" in text and "TV" in text and "KL" in text and "JS" in text
    assert f"{gauss_scale(1, 2).w:.6f}" in text


@pytest.mark.parametrize("argv,match", [
    (["--case", "gauss-scale", "--param", "-1"], "must be > 0"),
    (["--case", "gauss-scale", "--param", "0"], "must be > 0"),
    (["--case", "uniform", "--param", "0"], "must be > 0"),
    (["--case", "translate", "--param", "-1"], "must be ≥ 0"),
    (["--case", "translate", "--dim", "0"], "--dim must be"),
    (["--case", "parallel-lines", "--dim", "3"], "--dim applies"),
    (["--case", "parallel-lines", "--param", "nan"], "finite"),
    (["--case", "parallel-lines", "--steps", "0"], "--steps"),
    (["--case", "parallel-lines", "--lambda", "-1"], "--lambda"),
])
def test_cli_bad_values_raise_one_line_value_error(argv, match):
    args = parse(*argv)
    with pytest.raises(ValueError, match=match) as info:
        run_cli(args)
    assert "\n" not in str(info.value)


def test_run_cli_accepts_a_bare_namespace(capsys):
    assert run_cli(argparse.Namespace(case="parallel-lines", param=-1.0, json=True, steps=10)) == 0
    assert json.loads(capsys.readouterr().out)["w_exact"] == 1.0
    with pytest.raises(ValueError, match="valid choices"):
        run_cli(argparse.Namespace(case="nope"))


def test_bootstrap_interval_is_seeded_and_as_wide_as_the_standard_error():
    """The held-out interval of w (scipy's percentile bootstrap, P and Q resampled independently): the same
    seed gives the same interval; for two samples of 400 with unit variance the 95 % interval spans about
    2 · 1.96 · √(2/400) = 0.277 around the difference of the means; one sample each gives w itself."""
    rng = np.random.default_rng(3)
    fp, fq = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)
    est = C.W1Estimate(w=float(fp.mean() - fq.mean()), method="lp", grad_norm=1.0, corrected=None, history=(),
                       critic=torch.nn.Identity(), f_p=fp, f_q=fq)
    lo, hi = est.bootstrap(n=400, seed=7)
    assert (lo, hi) == est.bootstrap(n=400, seed=7) != est.bootstrap(n=400, seed=8)
    assert lo < est.w < hi
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(2 / 400), rel=0.2)
    one = C.W1Estimate(w=0.5, method="lp", grad_norm=1.0, corrected=None, history=(), critic=torch.nn.Identity(),
                       f_p=np.array([1.0]), f_q=np.array([0.5]))
    assert one.bootstrap() == (0.5, 0.5)
