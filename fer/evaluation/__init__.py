"""Evaluation: metrics, synthetic scenes and the evaluation suite."""
