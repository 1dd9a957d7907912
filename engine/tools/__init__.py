"""CLI-facing tools (benchmarks, quality measurements and their tasks, the distances command). No core
module imports these."""
