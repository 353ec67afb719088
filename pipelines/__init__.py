"""Runnable definitions around uimdata: corpus builders and benchmarks (``python -m pipelines.<name>``).

Not shipped in the wheel. Run from the repository root, e.g. ``python -m pipelines.bench``.
"""
