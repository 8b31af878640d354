"""Per-layer rates of a converted hybrid ResNet against its ANN: where conversion loses activity.

    python experiments/hybrid_resnet_rates.py ANN_WORKDIR NAME=CONVERSION_JSON[:MODE] ... [--time-steps 64]

For each ``conversion.json`` (written by the hybrid pipeline; MODE = its ``conversion.balance``,
default ``residual``), the converted SNN (unscaled thresholds, IF, Poisson input as the preset) runs
``--time-steps`` steps on the first ``--examples`` Fashion-MNIST test images beside the ANN of
ANN_WORKDIR. Per spiking layer: mean firing rate, the correlation of each neuron's rate with its
ANN activation, and the least-squares scale ``s`` in ``a ~ s * rate`` (rate coding with balanced
thresholds keeps ``s`` near the layer's activation scale; a growing ``s`` means the SNN loses activity
with depth). Writes ``docs/hybrid_resnet_rates.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def layer_rows(ann_acts, snn_spikes, names, time_steps):
    import numpy as np

    rows = []
    for name in names:
        a = np.asarray(ann_acts[name])
        s = np.asarray(snn_spikes[name]).reshape((a.shape[0], time_steps) + a.shape[1:]).mean(1)
        denom = float((s * s).sum())
        rows.append(
            {
                "layer": name,
                "rate_mean": float(s.mean()),
                "corr": float(np.corrcoef(a.ravel(), s.ravel())[0, 1]) if s.std() > 0 else None,
                "scale": float((a * s).sum() / denom) if denom > 0 else None,
                "ann_max": float(a.max()),
            }
        )
    return rows


def main(argv: list[str]) -> None:
    sys.path.insert(0, ROOT)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ann_workdir")
    parser.add_argument("conversions", nargs="+", help="NAME=path/to/conversion.json[:MODE]")
    parser.add_argument("--time-steps", type=int, default=64)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "hybrid_resnet_rates.json"))
    args = parser.parse_args(argv)

    import jax

    from snnjax import data as data_lib
    from snnjax import models, runtime
    from snnjax.methods.hybrid import config as hybrid_config
    from snnjax.methods.hybrid import conversion, pipeline
    from snnjax.train import stages
    from snnjax.train.mesh import make_mesh

    runtime.use_eigen_convolutions()
    import configs.hybrid_stdb as preset

    cfg = preset.get_config("fashion_mnist,resnet20")
    cfg.ann.checkpoint = args.ann_workdir
    cfg.model.time_steps = args.time_steps
    splits = data_lib.normalize_splits(data_lib.load_raw(cfg.data), cfg.data)
    acfg = hybrid_config.ann_config(cfg)
    ann_model = models.build(acfg.model, splits.num_classes)
    scratch = os.path.join("/tmp", "hybrid_resnet_rates")
    os.makedirs(scratch, exist_ok=True)
    restore = hybrid_config.ann_restore(cfg)
    ann = stages.run_stage(acfg, scratch, "ann", model=ann_model, splits=splits, restore=restore, mesh=make_mesh())
    params = jax.device_get(ann.variables)
    x = pipeline.normalized(splits.test.images[: args.examples], splits)
    y = splits.test.labels[: args.examples]
    logits, captured = ann_model.apply(params, x, train=False, capture_intermediates=True, mutable=["intermediates"])
    snn = conversion.with_decay(models.build(cfg.model, splits.num_classes), 1.0)
    names = snn.spiking_layers()
    ann_acts = {n: captured["intermediates"][n + "_act"]["__call__"][0] for n in names}
    out = {"ann_workdir": args.ann_workdir, "time_steps": args.time_steps, "examples": args.examples}
    out["ann_accuracy"] = float((logits.argmax(-1) == y).mean())
    for spec in args.conversions:
        name, rest = spec.split("=", 1)
        path, _, mode = rest.partition(":")
        record = json.load(open(path))
        variables = conversion.snn_variables(params, record["thresholds"], mode=mode or "residual")
        s_logits, s_captured = snn.apply(
            variables,
            x,
            train=False,
            rngs={"encoding": jax.random.key(0)},
            capture_intermediates=True,
            mutable=["intermediates"],
        )
        spikes = {n: s_captured["intermediates"][n + "_act"]["__call__"][0] for n in names}
        out[name] = {
            "balance_settings": record["balance_settings"],
            "snn_accuracy": float((s_logits.argmax(-1) == y).mean()),
            "layers": layer_rows(ann_acts, spikes, names, args.time_steps),
        }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    variants = [spec.split("=", 1)[0] for spec in args.conversions]
    print("| layer | " + " | ".join(f"{v}: rate, corr, scale" for v in variants) + " |")
    print("|---|" + "---|" * len(variants))
    for i, layer in enumerate(names):
        cells = []
        for v in variants:
            r = out[v]["layers"][i]
            corr = "-" if r["corr"] is None else f"{r['corr']:.2f}"
            scale = "-" if r["scale"] is None else f"{r['scale']:.1f}"
            cells.append(f"{r['rate_mean']:.4f}, {corr}, {scale}")
        print(f"| {layer} | " + " | ".join(cells) + " |")
    print("accuracy on these images: ANN", out["ann_accuracy"], {v: out[v]["snn_accuracy"] for v in variants})


if __name__ == "__main__":
    main(sys.argv[1:])
