"""Evaluation metrics and plots (plots return matplotlib Figures)."""
