"""python -m engine doctor: every check reports, none raises, and a failing check says why."""

import json

import torch

from engine.__main__ import main
from engine.tools import doctor


def test_doctor_runs_every_check_on_the_cpu(monkeypatch, capsys):
    monkeypatch.setattr(torch, "compile", lambda net, **kw: net)  # the real one takes a minute to build kernels
    assert main(["doctor", "--device", "cpu", "--quick", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in out["checks"]]
    assert names == ["engine", "torch", "device", "bf16", "torch.compile", "training", "translate"] and out["ok"]
    by = {c["name"]: c for c in out["checks"]}
    assert "20 cpu-quick steps of each family" in by["training"]["value"]
    assert [part.split()[0] for part in by["training"]["value"].split(": ", 1)[1].split(", ")] == [
        "colour", "local", "resnet"]
    assert "largest difference from the CPU 0" in by["translate"]["value"]
    assert ("not native" in by["bf16"]["value"]) == (not doctor.devices.native_bf16("cpu"))


def test_a_failing_check_is_reported_not_raised(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    checks = {c.name: c for c in doctor.run_doctor("cpu", paper_step=False)}
    assert not checks["torch.compile"].ok and "no compiler here" in checks["torch.compile"].value
    assert checks["training"].ok
    assert "NO  torch.compile" in doctor.format_report(list(checks.values()))
