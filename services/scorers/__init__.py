"""Scorers: pure CPU scorers run in the worker pool, and service scorers that call the sandbox or models."""
