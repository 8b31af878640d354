"""``python -m snnjax.analysis --workdir DIR``: spike/energy tables and PNGs of a finished run."""

from __future__ import annotations

import argparse
import sys

from snnjax import workdir_layout
from snnjax.analysis.energy import E_AC_PJ, E_MAC_PJ, EnergyModel


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m snnjax.analysis",
        description="Firing rates, synaptic operations and the energy estimate of a trained run "
        f"(restored from {workdir_layout.checkpoints('DIR')}; PNGs and analysis.json written to DIR).",
    )
    parser.add_argument("--workdir", required=True, help="the --workdir of a launch.py run")
    parser.add_argument(
        "--stage", default=None, help="checkpoint stage to analyse (default: student, else train, else the last found)"
    )
    parser.add_argument("--num_examples", type=int, default=256, help="test examples to run (default 256)")
    parser.add_argument("--batch_size", type=int, default=256, help="examples per forward pass (default 256)")
    parser.add_argument("--e_mac_pj", type=float, default=E_MAC_PJ, help=f"pJ per MAC (default {E_MAC_PJ})")
    parser.add_argument("--e_ac_pj", type=float, default=E_AC_PJ, help=f"pJ per accumulate (default {E_AC_PJ})")
    parser.add_argument("--out_dir", default=None, help="where PNGs and analysis.json go (default: --workdir)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from snnjax import runtime

    runtime.use_eigen_convolutions()  # before JAX starts, as launch.py (snnjax/runtime.py)
    from snnjax.analysis.workdir import analyze_workdir

    try:
        analyze_workdir(
            args.workdir,
            stage=args.stage,
            num_examples=args.num_examples,
            batch_size=args.batch_size,
            energy_model=EnergyModel(args.e_mac_pj, args.e_ac_pj),
            out_dir=args.out_dir,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
