"""HAFM core: audio, tokens, the three-stage cascade, FAD and fit metrics.

A plain Python package: it never imports Django, so it runs from a notebook, a training
cluster or a Celery worker alike.
"""

__version__ = "0.1.0"
