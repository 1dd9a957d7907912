"""The benchmark's arithmetic; speed itself is measured by `python -m engine bench`, never asserted."""

import json

import torch

from engine.__main__ import main
from engine.data import open_domains
from engine.devices import memory_in_use
from engine.tools.bench import bench_training, count_step_flops
from engine.training.trainer import Trainer
from tests.helpers import make_domains, tiny_config


def _trainer(tmp_path, **kw):
    cfg = tiny_config(**kw)
    a, b = make_domains(tmp_path)
    return Trainer(cfg, *open_domains(a, b, cfg), device="cpu")


def test_flops_scale_with_batch_and_skip_identity(tmp_path):
    x = torch.zeros(1, 3, 32, 32)
    f1 = count_step_flops(_trainer(tmp_path / "1", lambda_id=0.5), x, x)
    x2 = torch.zeros(2, 3, 32, 32)
    f2 = count_step_flops(_trainer(tmp_path / "2", batch_size=2, lambda_id=0.5), x2, x2)
    assert f2 == 2 * f1  # every counted op is linear in the batch
    f_noid = count_step_flops(_trainer(tmp_path / "3", lambda_id=0.0), x, x)
    assert f_noid < f1  # the identity passes are really skipped


def test_generator_conv_flops_match_closed_form(tmp_path):
    from torch.utils.flop_counter import FlopCounterMode

    from engine.models.networks import ResnetGenerator

    g = ResnetGenerator(3, 3, ngf=8, n_blocks=1)
    with FlopCounterMode(display=False) as fc:
        g(torch.zeros(1, 3, 32, 32))
    # 2·k²·Cin·Cout·Hout·Wout per conv: 7×7 3→8 @32², 3×3 8→16 @16², 16→32 @8², 2 block convs 32→32 @8²,
    # transposed 32→16 and 16→8 (a stride-2 transposed conv does k²·Cin·Cout multiply-adds per *input*
    # pixel: @8² and @16²), 7×7 8→3 @32².
    convs = [(7, 3, 8, 32), (3, 8, 16, 16), (3, 16, 32, 8), (3, 32, 32, 8), (3, 32, 32, 8), (3, 32, 16, 8),
             (3, 16, 8, 16), (7, 8, 3, 32)]
    expected = sum(2 * k * k * ci * co * s * s for k, ci, co, s in convs)
    assert fc.get_total_flops() == expected


def test_bench_cli_json_keys(tmp_path, capsys):
    rc = main(["bench", "--set", "ngf=8", "--set", "ndf=8", "--set", "n_blocks=1", "--set", "crop_size=32",
               "--set", "load_size=32", "--steps", "2", "--warmup", "1", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for k in ("its_per_s", "images_per_s", "gflop_per_step", "gflops", "peak_gflops", "peak_ratio",
              "data_wait_fraction", "peak_memory_mb"):
        assert k in out
    assert out["gflops"] == out["gflop_per_step"] * out["its_per_s"]
    assert out["peak_ratio"] == out["gflops"] / out["peak_gflops"]


def test_bench_on_real_folders_measures_data_wait(tmp_path):
    a, b = make_domains(tmp_path)
    res = bench_training(tiny_config(), steps=3, warmup=1, data=(str(a), str(b)))
    assert res.data_wait_fraction is not None and 0.0 <= res.data_wait_fraction < 1.0
    assert res.steps == 3 and res.its_per_s > 0


def test_bench_variants_side_by_side_report_precision_compile_and_both_peaks(tmp_path, capsys):
    rc = main(["bench", "--set", "ngf=8", "--set", "ndf=8", "--set", "n_blocks=1", "--set", "crop_size=32",
               "--set", "load_size=32", "--steps", "2", "--warmup", "1", "--variants", "amp=off", "amp=on", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["peaks"]) == {"fp32", "bf16"} and all(v > 0 for v in out["peaks"].values())
    off, on = out["variants"]
    assert (off["label"], off["precision"], on["precision"]) == ("amp=off", "fp32", "bf16")
    assert off["peak_gflops"] == out["peaks"]["fp32"] and on["peak_gflops"] == out["peaks"]["bf16"]
    assert off["gflop_per_step"] == on["gflop_per_step"]  # the same arithmetic, in another precision
    assert off["compiled"] is False and off["compile_s"] is None


def test_bench_translate_reports_tiles_memory_and_the_flop_limit(capsys):
    cap = (memory_in_use("cpu") >> 20) + 64  # --max-memory caps the whole process: 64 MB beyond what it holds
    rc = main(["bench", "--set", "ngf=8", "--set", "n_blocks=1", "--translate", "300x200", "--max-memory", f"{cap}M",
               "--repeats", "2", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["width"], out["height"]) == (300, 200) and out["tiles"] >= 1 and out["peak_memory_mb"] > 0
    assert out["ratio_to_flop_limited"] == out["seconds"] / out["flop_limited_seconds"]
