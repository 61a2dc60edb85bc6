"""Imported once by the worker pool's fork server: every forked worker starts with the scorers
imported and the language model loaded (shared copy-on-write), so a replacement is warm in milliseconds."""

from rewardstack.services.scorers import builtin  # noqa: F401  (imports every CPU scorer module)
from rewardstack.services.scorers.language import load_model

load_model()
from rewardstack.services.scorers.math.symbolic import warm_up

warm_up()  # sympy imported and its parser built once, not on each worker's first symbolic answer
