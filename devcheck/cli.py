"""Command line of the device check (the parent and its ``--worker`` subprocesses share it)."""

from __future__ import annotations

import argparse
import os

from devcheck import plan, workers
from devcheck.run import Run

DESCRIPTION = (
    "One command for a GPU session: correctness on the device, training-step speed vs SpikingJelly, a short run."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--out", default=os.environ.get("OUT", ""), help="output folder (default $OUT)")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (CI)")
    p.add_argument("--parts", default="tests,speed,e2e", help="comma-separated subset of tests,speed,e2e")
    p.add_argument("--budget-s", type=float, default=None, help="whole run (default 460; dry run 240)")
    p.add_argument("--tests-timeout-s", type=float, default=None, help="default 100; dry run 90")
    p.add_argument("--e2e-timeout-s", type=float, default=None, help="default 150; dry run 60")
    p.add_argument("--e2e-epochs", type=int, default=2)
    p.add_argument("--e2e-teacher-epochs", type=int, default=1)
    p.add_argument("--e2e-config", default=plan.E2E_CONFIG)
    p.add_argument(
        "--sj-python",
        default=os.environ.get("SJ_PYTHON", ""),
        help="interpreter with SpikingJelly + torch (default: $SJ_PYTHON, else this one if it "
        "imports spikingjelly, else /work/sjvenv/bin/python)",
    )
    p.add_argument(
        "--test-workers",
        type=int,
        default=None,
        help="pytest-xdist workers for the tests (default 4 on a GPU, 0 in a dry run)",
    )
    p.add_argument("--worker", choices=("snnjax", "spikingjelly", "sharded", "e2e"), help=argparse.SUPPRESS)
    p.add_argument("--neuron-impl", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--worker-arg", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    dry = args.dry_run
    args.budget_s = args.budget_s or (240.0 if dry else 460.0)
    args.tests_timeout_s = args.tests_timeout_s or (90.0 if dry else 100.0)
    args.e2e_timeout_s = args.e2e_timeout_s or (60.0 if dry else 150.0)
    args.parts = [x for x in args.parts.split(",") if x]
    bad = [x for x in args.parts if x not in ("tests", "speed", "e2e")]
    if bad:
        p.error(f"unknown --parts {bad}")
    if not args.worker and not args.out:
        p.error("--out DIR (or $OUT) is required")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "snnjax":
        workers.snnjax_worker()
    elif args.worker == "spikingjelly":
        workers.spikingjelly_worker(args.neuron_impl)
    elif args.worker == "sharded":
        workers.sharded_worker()
    elif args.worker == "e2e":
        workers.e2e_worker(args.worker_arg)
    else:
        Run(args).run()
    return 0
