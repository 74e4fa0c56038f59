"""Optimizers: gradient transformations, schedules, solvers and training loops (book Part V)."""
