"""Compare run records across platforms and seeds: loading, statistics, reports, plots.

Standard library + numpy/scipy/rich only; matplotlib is imported lazily for HTML and
--plots. Nothing here imports TensorFlow.
"""
