"""Distributed data-parallel training: 2 CPU processes with gloo, a tiny model, a few steps."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from engine.data import open_domains
from engine.io.checkpoint_files import load_checkpoint
from engine.training.distributed import DistInfo
from engine.training.reports import FamilyTrialReport
from engine.training.search import FamilySearch
from engine.training.trainer import Trainer
from tests.helpers import make_domains, run_process_tree, tiny_config

ROOT = Path(__file__).resolve().parents[1]


def _worker(rank: int, world: int, tmp: str, dir_a: str, dir_b: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        cfg = tiny_config(max_steps=4, gan_mode="wgan-gp", n_critic=2, save_every=4)
        info = DistInfo(rank, world, 0, "gloo")
        ds_a, ds_b = open_domains(dir_a, dir_b, cfg)
        t = Trainer(cfg, ds_a, ds_b, device="cpu", run_dir=Path(tmp) / "run", dist_info=info)
        shard = sorted(os.path.basename(f) for f in t.train_a.files)
        for _ in t.run():
            pass
        state = {f"{name}.{k}": v for name in ("G", "F", "D_A", "D_B")
                 for k, v in getattr(t.state, name).state_dict().items()}
        torch.save({"state": state, "shard": shard}, Path(tmp) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_stay_identical_on_disjoint_shards(tmp_path):
    a, b = make_domains(tmp_path, n_a=6, n_b=6)
    mp.spawn(_worker, args=(2, str(tmp_path), str(a), str(b)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k, v in r0["state"].items():
        assert torch.equal(v, r1["state"][k]), f"{k} differs between ranks"
    assert r0["shard"] and r1["shard"] and not set(r0["shard"]) & set(r1["shard"])  # disjoint shards
    assert len(r0["shard"]) + len(r1["shard"]) == 6
    # Only rank 0 wrote the run folder, and the weights moved from their initialisation.
    assert load_checkpoint(tmp_path / "run")["step"] == 4
    assert list(tmp_path.rglob("metrics.jsonl")) == [tmp_path / "run" / "metrics.jsonl"]


def _search_worker(rank: int, world: int, tmp: str, dir_a: str, dir_b: str) -> None:
    """An auto search on two ranks, stopped on rank 0 alone during the ResNet's trial (as Ctrl-C reaching one node)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        cfg = tiny_config(netG="auto", preprocess="auto", val_fraction=0.3, val_min=2, max_steps=40,
                          save_every=10**6, preview_every=10**6, eval_every=10**6)
        ds_a, ds_b = open_domains(dir_a, dir_b, cfg)
        search = FamilySearch(cfg, ds_a, ds_b, device="cpu", run_dir=Path(tmp) / "run",
                              dist_info=DistInfo(rank, world, 0, "gloo"))
        families = []
        for rep in search.run():
            if isinstance(rep, FamilyTrialReport):
                families.append(rep.family)
                if rank == 0 and rep.family == "resnet":
                    search.stop()
        state = {f"{name}.{k}": v for name in ("G", "F") for k, v in getattr(search.state, name).state_dict().items()}
        torch.save({"state": state, "families": sorted(set(families)), "chosen": search.choice.chosen,
                    "step": search.step}, Path(tmp) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_a_search_stopped_on_one_rank_ends_alike_on_every_rank(tmp_path):
    """A stop that reaches rank 0 alone ends the search on both ranks at the same point: the same candidates (the
    local generator not tried), the same winner, the same weights, and no hang (the ranks' collectives would no
    longer pair up if one went on to the local generator's trial)."""
    a, b = make_domains(tmp_path, n_a=8, n_b=8)
    ctx = mp.start_processes(_search_worker, args=(2, str(tmp_path), str(a), str(b)), nprocs=2, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + 240
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail("the two ranks hung")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["families"] == r1["families"] == ["colour", "resnet"]
    assert r0["chosen"] == r1["chosen"] and r0["step"] == r1["step"] < 40
    for k, v in r0["state"].items():
        assert torch.equal(v, r1["state"][k]), f"{k} differs between ranks"


def test_torchrun_cli_then_single_process_resume(tmp_path):
    a, b = make_domains(tmp_path, n_a=6, n_b=6)
    run = tmp_path / "run"
    sets = []
    for kv in ("load_size=36", "crop_size=32", "ngf=8", "ndf=8", "n_blocks=1", "n_layers_D=2", "log_every=1",
               "val_fraction=0", "save_every=4", "preview_every=2", "eval_every=2"):
        sets += ["--set", kv]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "engine", "train", str(a), str(b), "--out", str(run), "--steps", "4", "--device", "cpu", *sets]
    p = run_process_tree(cmd, timeout=300, env=env, cwd=tmp_path)  # a hang kills the workers too
    assert p.returncode == 0, p.stdout + p.stderr
    assert "× 2 processes (gloo)" in p.stdout
    assert list(tmp_path.rglob("metrics.jsonl")) == [run / "metrics.jsonl"]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["type"] == "progress"]
    assert steps == [1, 2, 3, 4]  # one writer: no duplicated rows
    assert load_checkpoint(run)["step"] == 4
    # A single process continues from the 2-process checkpoint.
    p = subprocess.run([sys.executable, "-m", "engine", "resume", str(run), "--steps", "2", "--device", "cpu"],
                       capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "resuming" in p.stdout and "at step 4" in p.stdout
    assert load_checkpoint(run)["step"] == 6
