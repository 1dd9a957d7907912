"""``python -m gui.bench`` runs end to end with tiny settings (a smoke test, not a timing test)."""

from __future__ import annotations

import json

from gui.bench import _order, its_from_points, latency_stats, main

TINY = ["--set", "load_size=36", "--set", "crop_size=32", "--set", "ngf=8", "--set", "ndf=8", "--set", "n_blocks=1",
        "--set", "n_layers_D=2", "--set", "preview_every=2"]


def test_bench_runs_both_paths_and_reports_json(qtbot, capsys):
    assert main(["--steps", "3", "--warmup", "1", "--rounds", "1", "--threads", "1", "--json", *TINY]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("cli_its_per_s", "gui_its_per_s", "ratio", "latency_p50_ms", "latency_p99_ms", "latency_max_ms",
                "threads", "load_avg_before", "runs"):
        assert key in out
    assert out["threads"] == 1 and [r["path"] for r in out["runs"]] == ["cli", "gui"]
    assert all(r["threads"] == 1 and r["steps_timed"] == 3 for r in out["runs"])
    assert out["cli_its_per_s"] > 0 and out["gui_its_per_s"] > 0 and out["latency_ticks"] > 0
    assert out["gui_previews"] >= 1 and out["log_every"] == 1 and out["preview_every"] == 2


def test_bench_helpers_and_usage_errors(capsys):
    assert _order(3) == ["cli", "gui", "gui", "cli", "cli", "gui"]
    assert its_from_points([(1, 0.5), (2, 1.0), (4, 2.0)], 2) == (2.0, 2, 1.0)
    p50, p99, mx = latency_stats([0.001] * 98 + [0.02, 0.03])
    assert (p50, p99, mx) == (1.0, 20.0, 30.0)
    assert main(["--set", "crop_size=31", "--steps", "2"]) == 2
    assert "crop_size" in capsys.readouterr().err
