"""The code-execution sandbox service: isolated, warm executors and test judging (see docs/sandbox.md).

Kept import-light: the executor process imports modules of this package before it isolates itself.
"""
