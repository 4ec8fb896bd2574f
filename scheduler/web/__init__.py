"""The HTTP side of ``haowatch run``: status page, feeds, ``/healthz`` and ``/metrics``."""
