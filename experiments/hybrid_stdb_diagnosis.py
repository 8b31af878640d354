"""Why STDB fine-tuning of the fashion_mnist_60k hybrid VGG5 collapses at T_s = 8: measurements and short trials.

    nice -n 5 python experiments/hybrid_stdb_diagnosis.py RUN_DIR docs/hybrid_stdb_diagnosis.json \
        [--parts h1,h2,h3,h4,trials] [--trial-steps 300] [--trials t8,t8_nowd,t8_linear,t16,t16_nowd]

``RUN_DIR``: a finished (or STDB-stage) hybrid run of ``configs/hybrid_stdb.py:fashion_mnist_60k`` (read-only:
its ANN checkpoint is COPIED to a temporary directory before restoring, its ``conversion.json`` read, its
``checkpoints/stdb`` copied when present). Writes the JSON after every part (so a cut-short run keeps what
it measured) and a markdown report with the tables next to it (``.md``).

Parts (each reuses the library: ``models.build``, ``conversion.snn_variables``, the train step and
optimizer of the STDB stage, ``conversion.sweep_over_time``):

- ``h1`` dead neurons: per spiking layer, on 1000 test images, the fraction of neurons that fire at least
  once within T = 8 / 16 / 32 steps, the mean rate (spikes per neuron per step) and the fraction of
  neuron-steps where STDB's surrogate is live (the neuron fired at an earlier step; else its surrogate is
  alpha * exp(-10) ~ 0); plus the fraction of units the ANN has active (ReLU > 0) on the same images. The
  T = 8 and 16 values are the first steps of one 32-step run (the IF dynamics are causal).
- ``h2`` weight decay vs data gradient: per layer, at the converted weights, on 4 training batches of 64
  (no augmentation), ``||mean_b g_b||``, the RMS gradient, ``||wd * w||`` and the fraction of weights whose
  decay term outweighs the mean data gradient; T = 8 and 16, STDB and linear surrogates.
- ``h3`` train-mode dropout: accuracy of the converted SNN on 2000 test images with dropout on (the train
  step's forward pass) vs off, at T = 8 and 16.
- ``h4`` the stage's start and the collapsed run's weights: the STDB stage's initial variables (built as
  pipeline.run builds them) evaluated at step 0 with the stage's eval step and with the conversion sweep
  on 2000 test images; per-layer weight norms of the run's STDB checkpoints vs the converted weights.
- ``trials``: short fine-tunes from the converted SNN (``--trial-steps`` steps of batch 64, the stage's
  train step with augmentation, seed 0), each tested on 2000 test images at its T (eval mode, the
  pipeline's sweep key); per-layer weight-norm drift.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)

from snnjax import data as data_lib  # noqa: E402
from snnjax import losses, models, workdir_layout  # noqa: E402
from snnjax.methods.hybrid import config as hybrid_config  # noqa: E402
from snnjax.methods.hybrid import conversion, pipeline  # noqa: E402
from snnjax.methods.hybrid import neuron as neuron_lib  # noqa: E402
from snnjax.train import checkpoint as ckpt_lib  # noqa: E402
from snnjax.train import inputs as inputs_lib  # noqa: E402
from snnjax.train import mesh as mesh_lib  # noqa: E402
from snnjax.train import setup, stages, steps  # noqa: E402

PRESET = "fashion_mnist_60k"
LAYERS = ("conv0", "conv1", "conv2", "fc0", "fc1", "head")
SPIKING = ("conv0", "conv1", "conv2", "fc0", "fc1")
TRIALS = {  # name: (T, weight decay or None = preset's, surrogate or None = preset's, threshold scale or None = preset's)
    "t8": (8, None, None, None),
    "t8_nowd": (8, 0.0, None, None),
    "t8_linear": (8, None, "linear", None),
    "t16": (16, None, None, None),
    "t16_nowd": (16, 0.0, None, None),
    "t8_linear_nowd": (8, 0.0, "linear", None),
    "t8_scale05_nowd": (8, 0.0, None, 0.5),
    "t8_scale05": (8, None, None, 0.5),
    "t8_scale04_nowd": (8, 0.0, None, 0.4),
}
SCALES = (0.3, 0.4, 0.5, 0.6, 0.7)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def get_config():
    spec = importlib.util.spec_from_file_location("hybrid_cfg", os.path.join(REPO, "configs", "hybrid_stdb.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config(PRESET)


def variant(config, *, time_steps=None, weight_decay=None, surrogate=None):
    cfg = copy.deepcopy(config)
    if time_steps is not None:
        cfg.model.time_steps = int(time_steps)
    if weight_decay is not None:
        cfg.optim.weight_decay = float(weight_decay)
    if surrogate is not None:
        cfg.model.surrogate = surrogate
    return cfg


def kernel_norms(params) -> dict[str, float]:
    return {name: float(jnp.linalg.norm(params[name]["kernel"])) for name in LAYERS}


class Setup:
    """Data, the ANN restored from a copy of RUN_DIR's checkpoint, thresholds, the stage's initial variables."""

    def __init__(self, run_dir: str, tmp: str):
        self.run_dir = run_dir
        self.config = get_config()
        self.mesh = mesh_lib.make_mesh()
        acfg = hybrid_config.ann_config(self.config)
        raw = data_lib.load_raw(self.config.data)
        self.splits = data_lib.normalize_splits(raw, self.config.data)
        ann_splits = data_lib.normalize_splits(raw, acfg.data)
        ann_model = models.build(acfg.model, self.splits.num_classes)
        src = workdir_layout.stage_checkpoints(run_dir, "ann")
        step = max(int(n) for n in os.listdir(src) if n.isdigit())
        dst = os.path.join(tmp, "ann")
        shutil.copytree(os.path.join(src, str(step)), os.path.join(dst, str(step)))  # read-only use of RUN_DIR
        state, _ = stages.restore_stage(acfg, dst, model=ann_model, splits=ann_splits, mesh=self.mesh)
        self.ann_step = int(state.step)
        self.ann_variables = jax.device_get(state.variables)
        self.ann_model = ann_model
        with open(workdir_layout.conversion(run_dir)) as f:
            self.record = json.load(f)
        mode = self.config.conversion.balance
        rescaled = conversion.scale_thresholds(
            self.record["thresholds"], float(self.config.conversion.scaling_factor), mode=mode
        )
        self.threshold_check = {
            k: (self.record["scaled_thresholds"][k], rescaled[k]) for k in self.record["scaled_thresholds"]
        }
        # Exactly as pipeline.run builds the stdb stage's initial variables.
        self.initial = conversion.snn_variables(self.ann_variables, self.record["scaled_thresholds"], mode=mode)
        self.test_x = pipeline.normalized(self.splits.test.images[:2000], self.splits)
        self.test_y = np.asarray(self.splits.test.labels[:2000])
        order = np.random.default_rng(0).permutation(self.splits.train.num_examples)[: 4 * 64]
        self.train_x = pipeline.normalized(self.splits.train.images[order], self.splits)
        self.train_y = np.asarray(self.splits.train.labels[order])
        self.sweep_key = jax.random.fold_in(jax.random.key(int(self.config.seed)), 4)  # pipeline._sweep's

    def scaled_variables(self, factor: float):
        mode = self.config.conversion.balance
        scaled = conversion.scale_thresholds(self.record["thresholds"], factor, mode=mode)
        return conversion.snn_variables(self.ann_variables, scaled, mode=mode)

    def model(self, cfg):
        return models.build(cfg.model, self.splits.num_classes)

    def sweep(self, model, variables, t: int, n: int = 2000) -> dict[str, float]:
        points = conversion.sweep_over_time(
            model,
            jax.device_get(variables),
            self.test_x[:n],
            self.test_y[:n],
            self.sweep_key,
            time_steps=(t,),
            batch_size=250,
            time_chunk=0,
            mesh=self.mesh,
        )
        return {"accuracy": float(points[t]["accuracy"]), "spikes_per_image": float(points[t]["spikes_per_image"])}


# ------------------------------------------------------------------------------------------------
# H1: dead neurons
# ------------------------------------------------------------------------------------------------


def h1_dead_neurons(
    s: Setup, n: int = 1000, t_max: int = 32, marks=(8, 16, 32), variables=None, thresholds=None
) -> dict[str, Any]:
    variables = s.initial if variables is None else variables
    thresholds = s.record["scaled_thresholds"] if thresholds is None else thresholds
    model = s.model(variant(s.config, time_steps=t_max))
    is_neuron = lambda mdl, _name: isinstance(mdl, neuron_lib.HybridNeuron)  # noqa: E731

    @jax.jit
    def spikes_of(variables, x, key):
        _, upd = model.apply(
            variables,
            x,
            train=False,
            rngs={"encoding": key},
            capture_intermediates=is_neuron,
            mutable=["intermediates"],
        )
        inter = upd["intermediates"]
        out = {}
        for name in SPIKING:
            sp = inter[name + "_act"]["__call__"][0]  # [B*T, ...]
            sp = sp.reshape((x.shape[0], t_max, -1))  # [B, T, neurons]
            stats = {}
            for t in marks:
                pre = sp[:, :t]
                fired = jnp.max(pre, axis=1) > 0  # [B, N]
                # STDB surrogate live at step k if the neuron fired at some step < k.
                before = jnp.cumsum(pre, axis=1) - pre > 0
                stats[t] = (
                    jnp.sum(fired.astype(jnp.float32)),
                    jnp.sum(pre),
                    jnp.sum(before.astype(jnp.float32)),
                    jnp.sum((jnp.max(fired, axis=0)).astype(jnp.float32)),  # neurons firing for any image of the batch
                )
            out[name] = (stats, sp.shape[-1])
        return out

    @jax.jit
    def ann_active(params, x):
        _, upd = s.ann_model.apply(
            {"params": params}, x, train=False, capture_intermediates=True, mutable=["intermediates"]
        )
        inter = upd["intermediates"]
        return {name: jnp.mean((inter[name + "_act"]["__call__"][0] > 0).astype(jnp.float32)) for name in SPIKING}

    bs = 100
    acc: dict[str, dict[int, np.ndarray]] = {name: {t: np.zeros(4) for t in marks} for name in SPIKING}
    sizes = {}
    ann_frac = {name: 0.0 for name in SPIKING}
    key = jax.random.key(11)
    for b in range(n // bs):
        x = jnp.asarray(s.test_x[b * bs : (b + 1) * bs])
        out = spikes_of(variables, x, jax.random.fold_in(key, b))
        for name, (stats, size) in out.items():
            sizes[name] = int(size)
            for t in marks:
                acc[name][t] += np.array([float(v) for v in stats[t]])
        for name, v in ann_active(s.ann_variables["params"], x).items():
            ann_frac[name] += float(v) / (n // bs)
    result = {}
    for name in SPIKING:
        size = sizes[name]
        row = {"neurons": size, "ann_active_fraction": ann_frac[name]}
        for t in marks:
            fired, spikes, live, _ = acc[name][t]
            row[f"T{t}"] = {
                "fired_at_least_once": fired / (n * size),
                "mean_rate": spikes / (n * size * t),
                "stdb_live_neuron_steps": live / (n * size * t),
                "fired_in_batch_mean": acc[name][t][3] / ((n // bs) * size),
            }
        result[name] = row
    return {"images": n, "layers": result, "thresholds": thresholds}


# ------------------------------------------------------------------------------------------------
# H2: data gradient vs weight decay
# ------------------------------------------------------------------------------------------------


def h2_gradients(s: Setup, t: int, surrogate: str | None) -> dict[str, Any]:
    cfg = variant(s.config, time_steps=t, surrogate=surrogate)
    model = s.model(cfg)
    wd = float(s.config.optim.weight_decay)
    params = s.initial["params"]
    model_state = {"thresholds": s.initial["thresholds"]}

    @jax.jit
    def grad_fn(params, x, y, key):
        def loss_fn(p):
            logits, _ = steps.apply_train(model, p, model_state, x, key)
            return losses.cross_entropy(logits, y), logits

        (loss, logits), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
        return loss, losses.accuracy(logits, y), g

    grads, loss_acc = [], []
    for b in range(4):
        x = jnp.asarray(s.train_x[b * 64 : (b + 1) * 64])
        y = jnp.asarray(s.train_y[b * 64 : (b + 1) * 64])
        loss, acc, g = grad_fn(params, x, y, jax.random.key(100 + b))
        grads.append(jax.device_get(g))
        loss_acc.append((float(loss), float(acc)))
    layers = {}
    for name in LAYERS:
        gs = np.stack([np.asarray(g[name]["kernel"]) for g in grads])
        w = np.asarray(params[name]["kernel"])
        mean_g = gs.mean(0)
        rms_g = np.sqrt((gs**2).mean(0))
        decay = wd * w
        layers[name] = {
            "weight_norm": float(np.linalg.norm(w)),
            "mean_grad_norm": float(np.linalg.norm(mean_g)),
            "rms_grad_norm": float(np.linalg.norm(rms_g)),
            "decay_norm": float(np.linalg.norm(decay)),
            "decay_over_mean_grad": float(np.linalg.norm(decay) / max(np.linalg.norm(mean_g), 1e-30)),
            "frac_decay_dominates": float(np.mean(np.abs(decay) > np.abs(mean_g))),
            "frac_decay_dominates_rms": float(np.mean(np.abs(decay) > rms_g)),
        }
    return {
        "T": t,
        "surrogate": cfg.model.surrogate,
        "weight_decay": wd,
        "loss": float(np.mean([a for a, _ in loss_acc])),
        "train_mode_accuracy": float(np.mean([b for _, b in loss_acc])),
        "layers": layers,
    }


# ------------------------------------------------------------------------------------------------
# H3: train-mode dropout
# ------------------------------------------------------------------------------------------------


def h3_dropout(s: Setup, t: int) -> dict[str, Any]:
    model = s.model(variant(s.config, time_steps=t))

    @jax.jit
    def correct(variables, x, y, key, train):
        del train
        logits = model.apply(variables, x, train=True, rngs=steps.model_rngs(key))
        return jnp.sum(jnp.argmax(logits, -1) == y)

    @jax.jit
    def correct_eval(variables, x, y, key):
        logits = model.apply(variables, x, train=False, rngs=steps.model_rngs(key))
        return jnp.sum(jnp.argmax(logits, -1) == y)

    n, bs = len(s.test_y), 250
    tr = ev = 0
    for b in range(n // bs):
        x, y = jnp.asarray(s.test_x[b * bs : (b + 1) * bs]), jnp.asarray(s.test_y[b * bs : (b + 1) * bs])
        key = jax.random.key(200 + b)  # same Poisson draws in both modes
        tr += int(correct(s.initial, x, y, key, True))
        ev += int(correct_eval(s.initial, x, y, key))
    return {
        "T": t,
        "conv_dropout": float(s.config.model.dropout),
        "classifier_dropout": float(s.config.model.classifier_dropout),
        "ann_conv_dropout": float(s.config.ann.dropout),
        "train_mode_accuracy": tr / n,
        "eval_mode_accuracy": ev / n,
    }


# ------------------------------------------------------------------------------------------------
# H4: the stage's start, the collapsed run's weights
# ------------------------------------------------------------------------------------------------


def h4_start(s: Setup, tmp: str) -> dict[str, Any]:
    t = int(s.config.model.time_steps)
    model = s.model(s.config)
    eval_step = jax.jit(steps.make_eval_step(model))
    n, bs = len(s.test_y), 250
    correct = 0.0
    for b in range(n // bs):
        x, y = jnp.asarray(s.test_x[b * bs : (b + 1) * bs]), jnp.asarray(s.test_y[b * bs : (b + 1) * bs])
        out = eval_step(s.initial, x, y, jnp.ones((bs,), bool), jax.random.key(b))
        correct += float(out["correct"])
    out: dict[str, Any] = {
        "T": t,
        "ann_checkpoint_step": s.ann_step,
        "scaled_thresholds_saved_vs_recomputed": s.threshold_check,
        "initial_eval_step_accuracy": correct / n,
        "initial_sweep": s.sweep(model, s.initial, t),
        "initial_weight_norms": kernel_norms(s.initial["params"]),
        "stdb_checkpoints": {},
    }
    src = workdir_layout.stage_checkpoints(s.run_dir, "stdb")
    if os.path.isdir(src):
        dst = os.path.join(tmp, "stdb")
        stdb_cfg = hybrid_config.stdb_config(s.config)
        stage_plan = setup.plan(stdb_cfg, s.splits, model, s.mesh)
        state0 = setup.initial_state(stage_plan, s.initial, int(s.config.seed), s.mesh)
        abstract = ckpt_lib.abstract_like(state0)
        for name in sorted((n for n in os.listdir(src) if n.isdigit()), key=int):
            shutil.copytree(os.path.join(src, name), os.path.join(dst, name))
            reader = ckpt_lib.Checkpointer(dst, keep=10, async_save=False)
            try:
                state, meta = reader.restore(int(name), abstract)
            finally:
                reader.close()
            norms = kernel_norms(state.params)
            out["stdb_checkpoints"][name] = {
                "epoch": meta.get("epoch"),
                "weight_norms": norms,
                "norm_ratio_to_initial": {k: norms[k] / out["initial_weight_norms"][k] for k in norms},
                "thresholds": vgg_thresholds(state.model_state),
            }
    return out


def vgg_thresholds(model_state) -> dict[str, float]:
    from snnjax.methods.hybrid import vgg

    return vgg.thresholds_from_collection(jax.device_get(model_state["thresholds"]))


def threshold_scales(s: Setup) -> dict[str, Any]:
    """Converted SNN with the balanced thresholds times each factor: accuracy and spikes at T = 8/16/32
    (2000 test images, the pipeline's sweep key) and the H1 activity at T = 8 (500 images)."""
    model = s.model(variant(s.config, time_steps=8))
    out = {}
    for factor in SCALES:
        variables = s.scaled_variables(factor)
        points = conversion.sweep_over_time(
            model, variables, s.test_x, s.test_y, s.sweep_key, time_steps=(8, 16, 32), batch_size=250, mesh=s.mesh
        )
        activity = h1_dead_neurons(
            s, n=500, t_max=8, marks=(8,), variables=variables, thresholds=vgg_thresholds(variables)
        )
        out[str(factor)] = {
            "accuracy": {str(t): float(p["accuracy"]) for t, p in points.items()},
            "spikes_per_image": {str(t): float(p["spikes_per_image"]) for t, p in points.items()},
            "T8_activity": {k: v["T8"] for k, v in activity["layers"].items()},
        }
        log(f"  scale {factor}: {out[str(factor)]['accuracy']}")
    return out


# ------------------------------------------------------------------------------------------------
# Trials
# ------------------------------------------------------------------------------------------------


def trial(s: Setup, name: str, n_steps: int, baselines: dict[int, Any]) -> dict[str, Any]:
    t, wd, surrogate, scale = TRIALS[name]
    cfg = variant(s.config, time_steps=t, weight_decay=wd, surrogate=surrogate)
    initial = s.initial if scale is None else s.scaled_variables(scale)
    scale = float(cfg.conversion.scaling_factor) if scale is None else scale
    model = s.model(cfg)
    stdb_cfg = hybrid_config.stdb_config(cfg)
    stage_plan = setup.plan(stdb_cfg, s.splits, model, s.mesh)
    state = setup.initial_state(stage_plan, initial, int(cfg.seed), s.mesh)
    train_inputs = inputs_lib.resident_train_inputs(
        s.splits.train, inputs_lib.DeviceData.from_config(cfg, s.splits, stage_plan.batch_size), s.mesh
    )
    images, labels = next(train_inputs.batches)  # the resident split, the same every step
    step_fn = jax.jit(
        steps.with_inputs(steps.make_train_step(model, stage_plan.tx), train_inputs.batch_fn), donate_argnums=0
    )
    if (t, scale) not in baselines:
        baselines[(t, scale)] = s.sweep(model, initial, t)
    t0 = time.perf_counter()
    curve, window = [], []
    for i in range(n_steps):
        state, m = step_fn(state, images, labels, None)
        window.append(m)
        if (i + 1) % 50 == 0:
            got = jax.device_get(window)
            curve.append(
                {
                    "step": i + 1,
                    "loss": float(np.mean([r["loss"] for r in got])),
                    "train_accuracy": float(np.mean([r["accuracy"] for r in got])),
                    "grad_norm": float(np.mean([r["grad_norm"] for r in got])),
                }
            )
            window = []
            log(f"  {name} step {i + 1}: {curve[-1]}")
    train_s = time.perf_counter() - t0
    final = jax.device_get(state.params)
    init_norms = kernel_norms(initial["params"])
    norms = kernel_norms(final)
    result = {
        "T": t,
        "weight_decay": float(cfg.optim.weight_decay),
        "surrogate": cfg.model.surrogate,
        "lr": float(cfg.optim.lr),
        "steps": n_steps,
        "batch_size": stage_plan.batch_size,
        "threshold_scale": scale,
        "converted_at_T": baselines[(t, scale)],
        "after": s.sweep(model, {"params": final, "thresholds": initial["thresholds"]}, t),
        "curve": curve,
        "weight_norm_ratio": {k: norms[k] / init_norms[k] for k in norms},
        "train_seconds": train_s,
    }
    return result


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(res: dict[str, Any]) -> str:
    out = ["# Hybrid STDB at T_s = 8 (fashion_mnist_60k VGG5): why fine-tuning collapses", ""]
    out.append(f"Generated by `experiments/hybrid_stdb_diagnosis.py` from `{res['run_dir']}` (read-only).")
    out.append("")
    if res.get("findings"):
        out += ["## Findings", ""] + [f"- {line}" for line in res["findings"]] + [""]
    if "h4" in res:
        h = res["h4"]
        out += ["## Start of the STDB stage (H4)", ""]
        out.append(
            f"Initial variables (as `pipeline.run` builds them), T={h['T']}, 2000 test images: eval step "
            f"{pct(h['initial_eval_step_accuracy'])} %, conversion sweep {pct(h['initial_sweep']['accuracy'])} % "
            f"({h['initial_sweep']['spikes_per_image']:.0f} spikes/image). Scaled thresholds saved = recomputed: "
            + str(all(abs(a - b) < 1e-5 for a, b in h["scaled_thresholds_saved_vs_recomputed"].values()))
        )
        if h["stdb_checkpoints"]:
            out += ["", "Weight norm of the collapsed run's STDB checkpoints / converted weights:", ""]
            out.append("| step | epoch | " + " | ".join(LAYERS) + " |")
            out.append("|---|---|" + "---|" * len(LAYERS))
            for step, c in h["stdb_checkpoints"].items():
                out.append(
                    f"| {step} | {c['epoch']} | "
                    + " | ".join(f"{c['norm_ratio_to_initial'][k]:.3f}" for k in LAYERS)
                    + " |"
                )
        out.append("")
    if "h1" in res:
        h = res["h1"]
        out += [f"## H1: activity of the converted SNN ({h['images']} test images, eval mode)", ""]
        out.append(
            "fired = fraction of neurons (x images) firing at least once in T steps; rate = spikes per neuron "
            "per step; live = fraction of neuron-steps where STDB's surrogate is non-zero (fired before); "
            "ANN = fraction of ANN units with ReLU > 0."
        )
        out += [
            "",
            "| layer | threshold | ANN active | fired T8 | fired T16 | fired T32 | rate T8 | rate T16 | rate T32 | live T8 | live T16 | live T32 |",
        ]
        out.append("|---|" + "---|" * 11)
        for name, r in h["layers"].items():
            out.append(
                f"| {name} | {h['thresholds'][name]:.3f} | {pct(r['ann_active_fraction'])} % | "
                + " | ".join(f"{pct(r[f'T{t}']['fired_at_least_once'])} %" for t in (8, 16, 32))
                + " | "
                + " | ".join(f"{r[f'T{t}']['mean_rate']:.4f}" for t in (8, 16, 32))
                + " | "
                + " | ".join(f"{pct(r[f'T{t}']['stdb_live_neuron_steps'])} %" for t in (8, 16, 32))
                + " |"
            )
        out.append("")
    if "h2" in res:
        out += ["## H2: data gradient vs the L2 weight-decay term at the converted weights", ""]
        out.append(
            "4 training batches of 64; `mean g` = norm of the batch-mean gradient, `wd*w` = norm of 5e-4 * w; "
            "`dom` = fraction of weights where |wd*w| > |mean g|."
        )
        out += [
            "",
            "| T | surrogate | loss | layer | weight | mean g | rms g | wd*w | wd*w / mean g | dom |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for h in res["h2"]:
            for name, r in h["layers"].items():
                out.append(
                    f"| {h['T']} | {h['surrogate']} | {h['loss']:.3f} | {name} | {r['weight_norm']:.3g} | {r['mean_grad_norm']:.3g} | "
                    f"{r['rms_grad_norm']:.3g} | {r['decay_norm']:.3g} | {r['decay_over_mean_grad']:.3g} | {pct(r['frac_decay_dominates'])} % |"
                )
        out.append("")
    if "h3" in res:
        out += ["## H3: train-mode (dropout) vs eval-mode accuracy of the converted SNN (2000 test images)", ""]
        out += ["| T | conv dropout (SNN) | ANN conv dropout | train mode | eval mode |", "|---|---|---|---|---|"]
        for h in res["h3"]:
            out.append(
                f"| {h['T']} | {h['conv_dropout']} | {h['ann_conv_dropout']} | {pct(h['train_mode_accuracy'])} % | {pct(h['eval_mode_accuracy'])} % |"
            )
        out.append("")
    if "scale" in res:
        out += ["## Threshold scaling factor (converted SNN, 2000 test images; activity at T=8 on 500)", ""]
        out += [
            "| factor | acc T8 | acc T16 | acc T32 | spikes/img T8 | fired T8 conv0/conv1/conv2/fc0/fc1 | live T8 conv2/fc0/fc1 |",
            "|---|---|---|---|---|---|---|",
        ]
        for f, r in res["scale"].items():
            a = r["T8_activity"]
            out.append(
                f"| {f} | "
                + " | ".join(f"{pct(r['accuracy'][t])} %" for t in ("8", "16", "32"))
                + f" | {r['spikes_per_image']['8']:.0f} | "
                + "/".join(pct(a[k]["fired_at_least_once"]) for k in SPIKING)
                + " | "
                + "/".join(pct(a[k]["stdb_live_neuron_steps"]) for k in ("conv2", "fc0", "fc1"))
                + " |"
            )
        out.append("")
    if res.get("trials"):
        out += ["## Short fine-tune trials (2000 test images, eval mode)", ""]
        out += [
            "| trial | T | wd | surrogate | threshold x | steps | converted | after | spikes/img before -> after | train acc (last 50) | weight-norm ratio conv0/conv1/conv2/fc0/fc1/head |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in res["trials"].items():
            last = r["curve"][-1]["train_accuracy"] if r["curve"] else float("nan")
            out.append(
                f"| {name} | {r['T']} | {r['weight_decay']} | {r['surrogate']} | {r.get('threshold_scale', 0.7)} | {r['steps']} | {pct(r['converted_at_T']['accuracy'])} % | "
                f"{pct(r['after']['accuracy'])} % | {r['converted_at_T']['spikes_per_image']:.0f} -> {r['after']['spikes_per_image']:.0f} | "
                f"{pct(last)} % | " + "/".join(f"{r['weight_norm_ratio'][k]:.3f}" for k in LAYERS) + " |"
            )
        out.append("")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("out_json")
    parser.add_argument("--parts", default="h4,h1,h3,h2,trials")
    parser.add_argument("--trials", default="t8,t8_nowd,t8_linear,t16,t16_nowd")
    parser.add_argument("--trial-steps", type=int, default=300)
    parser.add_argument("--merge", default="", help="another output JSON whose scale / trials entries are merged in")
    parser.add_argument(
        "--findings", default="", help="a text file, one finding per line, put at the top of the report"
    )
    args = parser.parse_args()
    res: dict[str, Any] = {}
    if os.path.exists(args.out_json):
        with open(args.out_json) as f:
            res = json.load(f)
    res["run_dir"] = args.run_dir
    if args.merge:
        with open(args.merge) as f:
            other = json.load(f)
        if "scale" in other:
            res["scale"] = other["scale"]
        res.setdefault("trials", {}).update(other.get("trials", {}))
    if args.findings:
        with open(args.findings) as f:
            res["findings"] = [line.strip() for line in f if line.strip()]

    def save():
        with open(args.out_json + ".tmp", "w") as f:
            json.dump(res, f, indent=1, default=float)
        os.replace(args.out_json + ".tmp", args.out_json)
        with open(os.path.splitext(args.out_json)[0] + ".md", "w") as f:
            f.write(markdown(res))

    if not args.parts:  # report only
        save()
        return
    with tempfile.TemporaryDirectory(prefix="stdb_diag_") as tmp:
        s = Setup(args.run_dir, tmp)
        log(f"ANN restored (step {s.ann_step}); thresholds {s.record['scaled_thresholds']}")
        for part in args.parts.split(","):
            t0 = time.perf_counter()
            if part == "h4":
                res["h4"] = h4_start(s, tmp)
            elif part == "h1":
                res["h1"] = h1_dead_neurons(s)
            elif part == "h2":
                res["h2"] = [
                    h2_gradients(s, t, sur) for t, sur in ((8, None), (16, None), (8, "linear"), (16, "linear"))
                ]
            elif part == "h3":
                res["h3"] = [h3_dropout(s, t) for t in (8, 16)]
            elif part == "scale":
                res["scale"] = threshold_scales(s)
            elif part == "trials":
                res.setdefault("trials", {})
                baselines: dict[int, Any] = {}
                for name in args.trials.split(","):
                    log(f"trial {name}")
                    res["trials"][name] = trial(s, name, args.trial_steps, baselines)
                    save()
                    log(f"trial {name}: {res['trials'][name]['after']}")
            else:
                raise ValueError(f"unknown part {part!r}")
            log(f"{part} done in {time.perf_counter() - t0:.0f}s")
            save()


if __name__ == "__main__":
    main()
