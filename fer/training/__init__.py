"""Training (the [train] extra): data blocks, the learner, distillation, training runs, export, blending and personalisation."""
