"""Training and evaluation: synthetic warps, data sets, the trainer, PCK and benchmark evaluation."""
