"""The worker processes of the device check (``python -m devcheck --worker KIND``): one request per stdin line,
one ``RESULT {json}`` line per answer on stdout."""

from __future__ import annotations

import json
import os
import sys
import traceback

from devcheck.plan import BENCHMARKS, ROOT


def _emit(obj: dict) -> None:
    sys.stdout.write("RESULT " + json.dumps(obj) + "\n")
    sys.stdout.flush()


def _step_flags(req: dict) -> list[str]:
    """The step-benchmark flags that snnjax's and SpikingJelly's scripts share (one request)."""
    return [
        *("--depth", "18", "--width", str(req["width"]), "--time-steps", str(req["T"])),
        *("--batch", str(req["batch"]), "--dtype", req["dtype"]),
        *("--steps", str(req["steps"]), "--warmup", str(req["warmup"])),
    ]


def worker_loop(kind: str, handle) -> None:
    """Read one JSON request per stdin line, answer ``RESULT {json}`` per request (errors included)."""
    _emit(dict(ready=True, kind=kind))
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if line == "quit":
            break
        req = json.loads(line)
        try:
            rec = handle(req)
        except Exception as e:  # noqa: BLE001 - recorded, the worker keeps serving
            rec = dict(error=f"{type(e).__name__}: {e}"[:800], traceback=traceback.format_exc()[-2000:])
        rec["request"] = req
        _emit(rec)


def snnjax_worker() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    sys.path.insert(0, str(ROOT))
    from snnjax import runtime

    runtime.use_eigen_convolutions()  # only where XLA runs on the CPU alone (as launch.py)
    import train_step

    def handle(req):
        flags = [*_step_flags(req), "--unroll", "0", "--conv-grad", "auto"]
        rec = train_step.measure(train_step.parse_args(flags))
        rec["variant"] = "library default (unroll=0, conv_grad=auto)"
        import gc

        gc.collect()
        return rec

    worker_loop("snnjax", handle)


def spikingjelly_worker(neuron_impl: str) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    import spikingjelly_step

    def handle(req):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        flags = [*_step_flags(req), "--device", device, "--neuron-impl", neuron_impl]
        rec = spikingjelly_step.measure(spikingjelly_step.parse_args(flags))
        rec["requested_impl"] = neuron_impl
        if device == "cuda":
            torch.cuda.empty_cache()
        return rec

    worker_loop("spikingjelly", handle)


def sharded_worker() -> None:
    """One tiny training step on a mesh over the default backend's devices vs the CPU; one RESULT line."""
    sys.path.insert(0, str(ROOT))
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from snnjax import models
    from snnjax.train import mesh as mesh_lib
    from snnjax.train import steps
    from snnjax.train.state import create_train_state

    devices = jax.devices()
    cpu = jax.devices("cpu")[0]
    batch = 16 * len(devices) if 16 % len(devices) else 16
    cfg = models.model_config(
        name="resnet18", neuron="lif", time_steps=int(os.environ.get("DC_SHARDED_T", "2")), width=4
    )
    model = models.build_model(cfg, 5)
    x = jax.random.normal(jax.random.key(1), (batch, 8, 8, 3))
    y = jnp.arange(batch, dtype=jnp.int32) % 5
    with jax.default_device(cpu):
        variables = jax.jit(lambda k: model.init(k, x[:1], train=False))(jax.random.key(0))
    variables = {k: v for k, v in variables.items() if k in ("params", "batch_stats")}
    tx = optax.sgd(0.1, momentum=0.9)
    state = create_train_state(variables, tx, jax.random.key(3))
    step = steps.make_train_step(model, tx)
    with jax.default_matmul_precision("highest"):
        mesh = mesh_lib.make_mesh(devices)
        s_dev, m_dev = jax.jit(step, out_shardings=mesh_lib.replicated(mesh))(
            jax.device_put(state, mesh_lib.replicated(mesh)), jax.device_put((x, y), mesh_lib.batch_sharded(mesh)), None
        )
        s_cpu, m_cpu = _cpu_step(jax, step, state, x, y, cpu)

    def worst(a_tree, b_tree):
        rel = 0.0
        for a, b in zip(jax.tree.leaves(a_tree), jax.tree.leaves(b_tree)):
            a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
            rel = max(rel, float(np.max(np.abs(a - b) / (np.abs(b) + 1e-5))) if a.size else 0.0)
        return rel

    loss_dev, loss_cpu = float(m_dev["loss"]), float(m_cpu["loss"])
    params_rel = worst(s_dev.params, s_cpu.params)
    stats_rel = worst(s_dev.model_state, s_cpu.model_state)
    ok = abs(loss_dev - loss_cpu) <= 1e-4 * abs(loss_cpu) + 1e-6 and params_rel < 1e-2 and stats_rel < 1e-2
    _emit(
        dict(
            platform=devices[0].platform,
            device_kind=devices[0].device_kind,
            num_devices=len(devices),
            batch=batch,
            loss_device=loss_dev,
            loss_cpu=loss_cpu,
            params_max_rel_diff=params_rel,
            batch_stats_max_rel_diff=stats_rel,
            status="passed" if ok else "failed",
            criterion="|loss diff| <= 1e-4 rel, params and BN stats max rel diff < 1e-2 (rel to |cpu| + 1e-5)",
        )
    )


def _cpu_step(jax, step, state, x, y, cpu):
    with jax.default_device(cpu):
        return jax.jit(step)(jax.device_put(state, cpu), jax.device_put((x, y), cpu), None)


def e2e_worker(spec_json: str) -> None:
    """Run the e2e pipeline in this process (the parent watches metrics.jsonl and may stop it)."""
    spec = json.loads(spec_json)
    sys.path.insert(0, str(ROOT))
    from snnjax import runtime

    runtime.use_eigen_convolutions()
    import importlib.util

    from snnjax import methods
    from snnjax.train import mesh as mesh_lib

    path, _, preset = spec["config"].partition(":")
    mod_spec = importlib.util.spec_from_file_location("e2e_config", str(ROOT / path))
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    cfg = mod.get_config(preset or None)
    for key, value in spec["overrides"].items():
        node = cfg
        *parents, leaf = key.split(".")
        for name in parents:
            node = node[name]
        node[leaf] = value
    _emit(dict(started=True, config=spec["config"], overrides=spec["overrides"]))
    mesh = mesh_lib.make_mesh()  # this worker is a program of its own: placement decided here, once
    summary = methods.get(cfg.pipeline)(cfg, spec["workdir"], mesh=mesh)
    _emit(dict(summary=_json_safe(summary)))


def _json_safe(obj):
    return json.loads(json.dumps(obj, default=lambda o: repr(o)))
