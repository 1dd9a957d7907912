"""CUDA: the same training step on the GPU, in fp32, bf16 and channels_last, against the CPU's fp32.

Skipped where there is no CUDA device (every CI machine so far); run them on the first GPU machine
with ``pytest tests/test_cuda.py``. The networks are built on the CPU from the same seed and then
moved, and the batches are the same, so the first step's losses and gradients can be compared.
"""

import pytest
import torch

from engine.config import with_recipe
from engine.data import open_domains
from engine.training.trainer import Trainer
from tests.helpers import make_domains, tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _first_step(tmp_path, device, **options):
    cfg = with_recipe(tiny_config(max_steps=1, device=device), "paper").with_values(options)
    a, b = make_domains(tmp_path / "data")
    t = Trainer(cfg, *open_domains(a, b, cfg), device=device, run_dir=tmp_path / f"run-{device}-{len(options)}")
    real_a, real_b = t.batches.batch(0)
    metrics = t.train_step(real_a.to(device), real_b.to(device)).metrics
    grads = {n: p.grad.detach().float().cpu() for n, p in t.state.G.named_parameters() if n.endswith("weight")}
    return t, metrics, grads


def _close(ref, other, rel, cos_min, ratio):
    (m0, g0), (m1, g1) = ref, other
    for k in ("G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B"):
        assert m1[k] == pytest.approx(m0[k], rel=rel, abs=1e-3), k
    for n in g0:
        cos = torch.nn.functional.cosine_similarity(g0[n].flatten(), g1[n].flatten(), dim=0)
        assert cos >= cos_min and abs(float(g1[n].norm() / g0[n].norm()) - 1) <= ratio, n


def test_cuda_fp32_step_matches_the_cpu(tmp_path):
    """The trainer allows TF32 on CUDA (10-bit mantissa in matmuls and convs, relative rounding ≈ 1e-3 per
    product), so the GPU's "fp32" step is held to 1 % on losses, cosine 0.99 and norms within 5 %."""
    _, m_cpu, g_cpu = _first_step(tmp_path / "cpu", "cpu", amp="off")
    t, m_gpu, g_gpu = _first_step(tmp_path / "gpu", "cuda", amp="off")
    assert t.device.type == "cuda" and not t.speed.amp
    _close((m_cpu, g_cpu), (m_gpu, g_gpu), rel=1e-2, cos_min=0.99, ratio=0.05)


def test_cuda_bf16_and_channels_last_keep_the_mathematics(tmp_path):
    """bf16 as in the CPU test (test_trainer.py): losses within 3 %, gradients cosine ≥ 0.9 and norms within 20 %.
    channels_last is a layout, not a precision: the TF32 tolerances of the CPU comparison."""
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    _, m32, g32 = _first_step(tmp_path / "fp32", "cuda", amp="off")
    t, m16, g16 = _first_step(tmp_path / "bf16", "cuda", amp="on")
    assert t.speed.amp and all(p.dtype == torch.float32 for p in t.state.G.parameters())
    _close((m32, g32), (m16, g16), rel=3e-2, cos_min=0.9, ratio=0.2)
    t, mcl, gcl = _first_step(tmp_path / "cl", "cuda", amp="off", channels_last=True, upsample="resize")
    _, mref, gref = _first_step(tmp_path / "cl-ref", "cuda", amp="off", upsample="resize")
    assert t.speed.channels_last_generators
    _close((mref, gref), (mcl, gcl), rel=1e-2, cos_min=0.99, ratio=0.05)
