"""Benchmarks, run side by side with the official SDK and reported as ratios."""
