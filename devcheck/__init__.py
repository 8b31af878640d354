"""The GPU device check as a small package: ``plan`` (what runs), ``flops`` (the analytic FLOP model),
``workers`` (subprocesses that time one framework each), ``procs`` (their parent-side handles),
``run`` (the parts in order within a time budget), ``report`` (the Markdown tables), ``cli``.
Entry points: ``bash devcheck/run.sh`` (the GPU session's one command: installs the carried wheels, then
runs this package) and ``python -m devcheck`` (``__main__.py``) from the repository root. The wheels and
data it needs are fetched beforehand by ``devcheck/fetch_wheels.sh``; ``devcheck/README.md`` says how."""
