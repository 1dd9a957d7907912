"""Training: the CycleGAN step, the loop with its controls, evaluation, checkpoint state, reports and the
failure watch."""
