"""The GPU device check as a small package: ``plan`` (what runs), ``flops`` (the analytic FLOP model),
``workers`` (subprocesses that time one framework each), ``procs`` (their parent-side handles),
``run`` (the parts in order within a time budget), ``report`` (the Markdown tables), ``cli``.
Entry point: ``benchmarks/device_check.py``."""
