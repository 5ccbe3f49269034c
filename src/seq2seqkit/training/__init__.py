"""Training: loss, learning-rate schedules and the training loop."""
