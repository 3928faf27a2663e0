"""Operations: the metrics every process counts into (``ops.metrics``) and the
multiprocess bookkeeping behind ``/metrics`` (``ops.multiprocess``).

Imports nothing of the project: every layer counts into it, down to the
media node, so it must never close a circle.
"""
