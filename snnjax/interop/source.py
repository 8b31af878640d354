"""A PyTorch ANN checkpoint as a pipeline stage: the IDSNN teacher or transplant source of a run.

``--config.teacher.checkpoint=/path/model.pth`` (or ``config.transplant.checkpoint``) names a PyTorch
file instead of a finished snnjax run; ``config.<section>.format`` picks its layout (``auto``: from
the key names). The network is built from the checkpoint's shapes (``name``, ``width``, ``stem``,
``stem_padding`` of the model section) and then checked tensor by tensor against the snnjax model
for this run's data (input channels, classes): the first tensor that does not fit is named in a
one-line error. The conversion report is written to ``WORKDIR/<stage>_torch_report.txt``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from snnjax import trees, workdir_layout
from snnjax.interop import convert, layouts
from snnjax.interop import torch as tio

is_torch_file = tio.is_torch_file


@dataclasses.dataclass(frozen=True)
class TorchANN:
    """A converted checkpoint: its ``config.model`` section, variables (NumPy), report and summary."""

    model: ml_collections.ConfigDict
    variables: dict[str, Any]
    report: convert.ConversionReport
    summary: dict[str, Any]


def _torch_shape(snnjax_shape: tuple[int, ...], how: str) -> tuple[int, ...]:
    """The torch orientation of an snnjax leaf shape (inverse of the conversion named ``how``)."""
    if how.startswith("OIHW"):
        h, w, i, o = snnjax_shape
        return (o, i, h, w)
    return tuple(reversed(snnjax_shape)) if how == "transposed" else tuple(snnjax_shape)


def check_shapes(
    converted: convert.Converted, model: Any, image_shape: tuple[int, ...], num_classes: int, where: str
) -> None:
    """Raise a one-line ``ValueError`` naming the first converted tensor whose shape differs from what
    ``model`` (built for ``image_shape`` ``[H, W, C]`` and ``num_classes``) needs, or a missing one."""
    abstract = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1,) + tuple(image_shape), jnp.float32), train=False)
    )
    want = {
        "/".join(p): tuple(v.shape)
        for c in ("params", "batch_stats")
        for p, v in trees.flatten(abstract.get(c, {}), (c,)).items()
    }
    have = {
        "/".join(p): tuple(np.shape(v))
        for c in ("params", "batch_stats")
        for p, v in trees.flatten(converted.variables[c], (c,)).items()
    }
    data = f"{image_shape[-1]}-channel {image_shape[0]}x{image_shape[1]} images, {num_classes} classes"
    for tkey, spath, how in converted.report.mapped:
        if spath not in want:
            raise ValueError(f"{where}: tensor {tkey} has no place in the snnjax model built from it ({spath}).")
        if have[spath] != want[spath]:
            raise ValueError(
                f"{where}: tensor {tkey} has shape {_torch_shape(have[spath], how)} but this run's data "
                f"({data}) needs {_torch_shape(want[spath], how)} there. Fix: use a checkpoint trained for this "
                "dataset, or the dataset it was trained on"
            )
    missing = sorted(set(want) - set(have))
    if missing:
        raise ValueError(
            f"{where}: the checkpoint has no tensor for snnjax's {missing[0]} (and {len(missing) - 1} more)"
        )


def load(
    section: ml_collections.ConfigDict,
    key: str,
    base_model: ml_collections.ConfigDict | None,
    splits: Any,
    workdir: str,
    stage: str,
) -> TorchANN | None:
    """The ANN in ``section.checkpoint`` when it is a PyTorch file (else None), as ``config.<key>``.

    ``base_model``: the model section whose other keys (neuron, init, ...) the network keeps
    (default: an ANN, ``neuron='relu'``, ``time_steps=1``). The report goes to
    ``workdir/<stage>_torch_report.txt``.
    """
    from snnjax import models
    from snnjax.train import distributed
    from snnjax.train.run_outputs import write_text

    path = section.get("checkpoint", "")
    if not is_torch_file(path):
        return None
    fmt = section.get("format", "auto")
    where = f"config.{key}.checkpoint={path!r}"
    try:
        state = tio.load_state_dict(path)
        layout = tio.detect_layout(state.keys(), fmt, where)
        converted = convert.from_torch(state, layout)
        base = base_model if base_model is not None else models.model_config(neuron="relu", time_steps=1)
        model_cfg = tio.model_section(converted.report.arch, layout, base)
    except (ValueError, FileNotFoundError, ImportError) as err:
        message = str(err)
        raise type(err)(message if where in message else f"{where}: {message}") from None
    model = models.build(model_cfg, splits.num_classes)
    check_shapes(converted, model, tuple(splits.image_shape), splits.num_classes, where)
    arch = converted.report.arch
    report_path = workdir_layout.torch_report(workdir, stage)
    os.makedirs(workdir, exist_ok=True)
    write_text(report_path, converted.report.to_text() + "\n")
    distributed.say(
        f"[{stage}] {path}: {layout} {model_cfg.name} (width {arch.width}, stem {model_cfg.stem}), "
        f"{len(converted.report.mapped)} tensors mapped, {len(converted.report.left_out)} left out; see {report_path}"
    )
    summary = {
        "restored_from": path,
        "format": layout,
        "model": model_cfg.name,
        "width": arch.width,
        "mapped": len(converted.report.mapped),
        "left_out": len(converted.report.left_out),
    }
    return TorchANN(model_cfg, converted.variables, converted.report, summary)


def validate(section: ml_collections.ConfigDict, key: str) -> None:
    """``config.<key>.format`` is one of :data:`layouts.FORMATS`."""
    fmt = section.get("format", "auto")
    if fmt not in layouts.FORMATS:
        raise ValueError(f"config.{key}.format={fmt!r} is not valid; choose one of {list(layouts.FORMATS)}")
