"""Weight transplant from a trained ANN teacher into a (spiking) ResNet student (IDSNN, section 6).

The transplant is a pure pytree function: variables in, new variables and a report out. It relies
on the parameter layout of :mod:`snnjax.models.resnet`::

    stem_conv/kernel [kh, kw, in, out]          stem_bn/{scale,bias}  (batch_stats: {mean,var})
    stage{s}_block{b}/conv{k}/kernel            stage{s}_block{b}/bn{k}/{scale,bias}
    stage{s}_block{b}/shortcut_conv/kernel      stage{s}_block{b}/shortcut_bn/{scale,bias}
    head/kernel [in, classes], head/bias [classes]

Rules (the official IDSNN code, with the paper's "relative position" rule as an option):

* blocks: within each stage, student block ``i`` takes teacher block ``block_map(...)[i]``;
* channels: every conv kernel, BN vector and the head's input axis are resized by cyclic "loop
  interpolation" ``w_s[..., i, o] = w_t[..., i % C_in_t, o % C_out_t]`` (tiles when the student is
  wider, truncates when it is narrower); kernel sizes must match;
* the stem is transplanted by default, shortcut 1x1 convs + BN and the head only on request;
* everything else (PLIF ``decay_logit``, excluded modules, other collections) keeps the student's
  initialisation and is listed as such in the :class:`TransplantReport`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from snnjax import trees

Path = tuple[str, ...]
KEPT = trees.KEPT
RULES = ("first", "uniform")
_COLLECTIONS = ("params", "batch_stats")

_BLOCK_RE = re.compile(r"^stage(\d+)_block(\d+)$")
_MAIN_RE = re.compile(r"^(conv|bn)\d+$")
_CONV_RE = re.compile(r"^conv\d+$")
_SHORTCUT = ("shortcut_conv", "shortcut_bn")
_STEM = ("stem_conv", "stem_bn")
_BLOCK_TYPES = {("conv1", "conv2"): "BasicBlock", ("conv1", "conv2", "conv3"): "Bottleneck"}


# The report: one (student path, source) entry per student leaf (snnjax.trees.TransferReport).
TransplantReport = trees.TransferReport


# --------------------------------------------------------------------------------------------- block map


def block_map(teacher_blocks: int, student_blocks: int, rule: str = "first") -> tuple[int, ...]:
    """Teacher block index for each of ``student_blocks`` student blocks of one stage.

    Args:
      teacher_blocks: ``d_t``, blocks in the teacher's stage (>= 1).
      student_blocks: ``d_s``, blocks in the student's stage (>= 1).
      rule: ``"first"``: block ``i`` <- ``min(i, d_t - 1)`` (official IDSNN code);
        ``"uniform"``: block ``i`` <- ``floor(i * (d_t - 1) / (d_s - 1) + 0.5)`` (evenly spaced,
        both endpoints kept; ``(0,)`` when ``d_s == 1``).

    Returns:
      A tuple of ``d_s`` teacher indices in ``[0, d_t)``.
    """
    if rule not in RULES:
        raise ValueError(f"unknown block rule {rule!r}; choose one of {list(RULES)}")
    for name, value in (("teacher_blocks", teacher_blocks), ("student_blocks", student_blocks)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    d_t, d_s = int(teacher_blocks), int(student_blocks)
    if rule == "first":
        return tuple(min(i, d_t - 1) for i in range(d_s))
    if d_s == 1:
        return (0,)
    # floor(i*(d_t-1)/(d_s-1) + 1/2) in exact integer arithmetic (no float ties, no banker's rounding).
    return tuple((2 * i * (d_t - 1) + (d_s - 1)) // (2 * (d_s - 1)) for i in range(d_s))


def format_block_mapping(
    teacher_stage_sizes: Sequence[int], student_stage_sizes: Sequence[int], rule: str = "first"
) -> str:
    """A short picture of the block map, one line per stage (stages count from 0 like the params).

    Example: ``format_block_mapping((3, 4, 6, 3), (2, 2, 2, 2), "uniform")`` gives
    ``"stage0: student [0,1] <- teacher [0,2]"`` ... ``"stage2: student [0,1] <- teacher [0,5]"``.
    """
    _check_stage_counts(tuple(teacher_stage_sizes), tuple(student_stage_sizes))
    lines = []
    for s, (d_t, d_s) in enumerate(zip(teacher_stage_sizes, student_stage_sizes)):
        mapping = block_map(d_t, d_s, rule)
        student = ",".join(str(i) for i in range(d_s))
        teacher = ",".join(str(j) for j in mapping)
        lines.append(f"stage{s}: student [{student}] <- teacher [{teacher}]")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- tiling


def loop_interpolate(
    teacher: np.ndarray | jax.Array, student_shape: tuple[int, ...], channel_axes: tuple[int, ...]
) -> jax.Array:
    """Cyclic tiling / truncation of ``teacher`` to ``student_shape`` along ``channel_axes``.

    ``out[..., i, ..., o] = teacher[..., i % C_t_i, ..., o % C_t_o]`` for each axis in
    ``channel_axes``; every other axis must already have the student's size.

    Args:
      teacher: array of any rank ``r``, e.g. a conv kernel ``[kh, kw, in_t, out_t]``.
      student_shape: target shape, rank ``r``, e.g. ``(kh, kw, in_s, out_s)``.
      channel_axes: axes that may differ (negative values count from the end), e.g. ``(2, 3)``.

    Returns:
      An array of shape ``student_shape`` and the teacher's dtype.
    """
    t = jnp.asarray(teacher)
    student_shape = tuple(int(n) for n in student_shape)
    if t.ndim != len(student_shape):
        raise ValueError(
            f"loop_interpolate: teacher shape {t.shape} and student shape {student_shape} "
            f"have different ranks ({t.ndim} vs {len(student_shape)})"
        )
    axes = set()
    for axis in channel_axes:
        if not -t.ndim <= axis < t.ndim:
            raise ValueError(f"loop_interpolate: channel axis {axis} is out of range for shape {t.shape}")
        axes.add(axis % t.ndim)
    for axis, (n_t, n_s) in enumerate(zip(t.shape, student_shape)):
        if axis not in axes and n_t != n_s:
            raise ValueError(
                f"loop_interpolate: teacher shape {t.shape} and student shape {student_shape} differ "
                f"on axis {axis} ({n_t} vs {n_s}), which is not a channel axis {tuple(channel_axes)}"
            )
        if axis in axes and n_t == 0 and n_s > 0:
            raise ValueError(
                f"loop_interpolate: cannot tile the empty axis {axis} of teacher shape {t.shape} "
                f"to student shape {student_shape}"
            )
    for axis in sorted(axes):
        if t.shape[axis] != student_shape[axis]:
            t = jnp.take(t, np.arange(student_shape[axis]) % t.shape[axis], axis=axis)
    return t


def _stage_sizes(flat: Mapping[Path, Any], who: str) -> tuple[int, ...]:
    """Blocks per stage found in a flattened variables tree (any collection)."""
    blocks: dict[int, set[int]] = {}
    for path in flat:
        match = _BLOCK_RE.match(path[1]) if len(path) > 2 else None
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    sizes = []
    for s in range(len(blocks)):
        if s not in blocks or blocks[s] != set(range(len(blocks[s]))):
            found = {k: sorted(v) for k, v in sorted(blocks.items())}
            raise ValueError(
                f"{who} variables have non-contiguous stage/block names {found} (stage -> blocks); "
                "expected stage0..stage{S-1} each with block0..block{n-1} (snnjax.models.resnet)"
            )
        sizes.append(len(blocks[s]))
    return tuple(sizes)


def _check_stage_counts(teacher_sizes: tuple[int, ...], student_sizes: tuple[int, ...]) -> None:
    if len(teacher_sizes) != len(student_sizes):
        raise ValueError(
            f"teacher has {len(teacher_sizes)} stages (blocks {teacher_sizes}) but student has "
            f"{len(student_sizes)} stages (blocks {student_sizes}); transplant maps stage s to "
            "stage s, so both networks need the same number of stages"
        )


def _block_convs(flat: Mapping[Path, Any], block: str) -> tuple[str, ...]:
    """Sorted main conv names (``conv1``, ``conv2``, ...) of a block in the params collection."""
    return tuple(
        sorted({p[2] for p in flat if len(p) > 3 and p[0] == "params" and p[1] == block and _CONV_RE.match(p[2])})
    )


def _block_type(convs: tuple[str, ...]) -> str:
    return _BLOCK_TYPES.get(convs, f"unknown block ({', '.join(convs) or 'no convs'})")


def _check_block_types(teacher: Mapping[Path, Any], student: Mapping[Path, Any], pairs: Mapping[str, str]) -> None:
    """Every (student block -> teacher block) pair must have the same conv layout."""
    for s_block, t_block in pairs.items():
        s_convs, t_convs = _block_convs(student, s_block), _block_convs(teacher, t_block)
        if s_convs != t_convs:
            raise ValueError(
                f"block types differ: teacher params/{t_block} is a {_block_type(t_convs)} ({', '.join(t_convs)}) "
                f"but student params/{s_block} is a {_block_type(s_convs)} ({', '.join(s_convs)}); transplant "
                "needs the same block type in teacher and student (e.g. ResNet34 -> ResNet18 or "
                "ResNet101 -> ResNet50)"
            )


def _check_head(teacher: Mapping[Path, Any], student: Mapping[Path, Any]) -> None:
    """With ``include_head``, the heads ``[in, classes]`` must have the same number of classes."""
    path = ("params", "head", "kernel")
    if path not in teacher or path not in student:
        return
    t_shape, s_shape = tuple(np.shape(teacher[path])), tuple(np.shape(student[path]))
    if len(t_shape) == len(s_shape) == 2 and t_shape[1] != s_shape[1]:
        raise ValueError(
            f"include_head=True needs the same number of classes: teacher has {t_shape[1]} classes "
            f"(params/head/kernel {t_shape}) but student has {s_shape[1]} (params/head/kernel "
            f"{s_shape}); pass include_head=False to keep the student's own head"
        )


# --------------------------------------------------------------------------------------------- leaf mapping


def _describe(
    t_shape: tuple[int, ...], s_shape: tuple[int, ...], axes: tuple[int, ...], labels: tuple[str, ...]
) -> str:
    """``'[tiled 64->128 in, 128->128 out]'``, ``'[truncated 8->4]'`` or ``'[copied]'``."""
    if t_shape == s_shape:
        return "[copied]"
    grow = any(s_shape[a] > t_shape[a] for a in axes)
    shrink = any(s_shape[a] < t_shape[a] for a in axes)
    verb = "tiled/truncated" if grow and shrink else ("tiled" if grow else "truncated")
    parts = [f"{t_shape[a]}->{s_shape[a]}" + (f" {label}" if label else "") for a, label in zip(axes, labels)]
    return f"[{verb} {', '.join(parts)}]"


def _map_leaf(teacher_leaf: Any, student_leaf: Any, t_path: Path, s_path: Path) -> tuple[jax.Array, str]:
    """Resize one teacher leaf to the student's shape and dtype; returns ``(leaf, source note)``."""
    t_shape, s_shape = tuple(np.shape(teacher_leaf)), tuple(np.shape(student_leaf))
    module, leaf = s_path[-2], s_path[-1]
    where = f"teacher {trees.path_name(t_path)} {t_shape} -> student {trees.path_name(s_path)} {s_shape}"
    if len(t_shape) != len(s_shape):
        raise ValueError(f"rank mismatch: {where}; the networks' layer types differ at this path")
    if module == "head" and leaf == "kernel":
        if len(s_shape) != 2 or t_shape[1] != s_shape[1]:
            raise ValueError(
                f"the head needs the same number of classes: {where}; pass include_head=False "
                "to keep the student's own head"
            )
        axes, labels = (0,), ("in",)
    elif module == "head":
        if t_shape != s_shape:
            raise ValueError(
                f"the head needs the same number of classes: {where}; pass include_head=False "
                "to keep the student's own head"
            )
        axes, labels = (), ()
    elif len(s_shape) == 4:  # conv kernel [kh, kw, in, out]
        if t_shape[:2] != s_shape[:2]:
            raise ValueError(
                f"kernel sizes differ: {where}; transplant tiles channels only, so kh, kw must "
                "match (same stem type and block type in teacher and student)"
            )
        axes, labels = (2, 3), ("in", "out")
    elif len(s_shape) == 1:  # BN scale / bias / mean / var [C]
        axes, labels = (0,), ("",)
    else:
        raise ValueError(f"no transplant rule for a rank-{len(s_shape)} leaf: {where}")
    value = loop_interpolate(teacher_leaf, s_shape, axes).astype(jnp.dtype(student_leaf.dtype))
    return value, f"{trees.path_name(t_path)} {_describe(t_shape, s_shape, axes, labels)}"


def _teacher_module_present(teacher: Mapping[Path, Any], module_path: Path) -> bool:
    """Does any teacher collection hold ``module_path`` (e.g. ``('stage1_block0', 'shortcut_conv')``)?"""
    n = len(module_path)
    return any(p[1 : 1 + n] == module_path for p in teacher)


def _source_module(
    path: Path, *, block_source: Mapping[str, str], include_stem: bool, include_shortcut: bool, include_head: bool
) -> tuple[Path | None, str]:
    """Teacher module path (without collection) for a student leaf path, or ``(None, reason)``."""
    if path[0] not in _COLLECTIONS:
        return None, f"collection {path[0]!r} is not transplanted"
    top, module = path[1] if len(path) > 2 else "", path[2] if len(path) > 3 else ""
    if top in _STEM:
        return ((top,), "") if include_stem else (None, "include_stem=False")
    if top == "head":
        return ((top,), "") if include_head else (None, "include_head=False")
    if top in block_source:
        if _MAIN_RE.match(module):
            return (block_source[top], module), ""
        if module in _SHORTCUT:
            return ((block_source[top], module), "") if include_shortcut else (None, "include_shortcut=False")
        if module.startswith(("act", "shortcut_act")):
            return None, "neuron parameter"
    if top.startswith("stem_act"):
        return None, "neuron parameter"
    return None, "no transplant rule for this path"


# --------------------------------------------------------------------------------------------- transplant


def transplant(
    teacher_variables: Mapping,
    student_variables: Mapping,
    *,
    block_rule: str = "first",
    include_stem: bool = True,
    include_shortcut: bool = False,
    include_head: bool = False,
) -> tuple[dict, TransplantReport]:
    """Initialise a student ResNet from a teacher ResNet (IDSNN weight transplant).

    Args:
      teacher_variables: ``{'params': ..., 'batch_stats': ...}`` of the teacher (dict or FrozenDict).
      student_variables: the student's initialised variables, same collections; any depth/width with
        the same number of stages and the same block type as the teacher.
      block_rule: ``"first"`` (official code) or ``"uniform"``, see :func:`block_map`.
      include_stem: transplant ``stem_conv`` / ``stem_bn`` (input channels are tiled too).
      include_shortcut: transplant the blocks' ``shortcut_conv`` / ``shortcut_bn``.
      include_head: transplant ``head/kernel`` (``[in, classes]``, tiled on ``in``; the class
        counts must match) and copy ``head/bias``.

    Returns:
      ``(variables, report)``: plain nested dicts with the student's structure and leaf dtypes
      (leaves that keep their initialisation are the student's own objects), and a
      :class:`TransplantReport` listing every student leaf once. The inputs are not modified.
    """
    if block_rule not in RULES:
        raise ValueError(f"unknown block_rule {block_rule!r}; choose one of {list(RULES)}")
    teacher, student = trees.flatten(teacher_variables), trees.flatten(student_variables)
    t_sizes, s_sizes = _stage_sizes(teacher, "teacher"), _stage_sizes(student, "student")
    _check_stage_counts(t_sizes, s_sizes)
    block_source = {
        f"stage{s}_block{i}": f"stage{s}_block{j}"
        for s, (d_t, d_s) in enumerate(zip(t_sizes, s_sizes))
        for i, j in enumerate(block_map(d_t, d_s, block_rule))
    }
    _check_block_types(teacher, student, block_source)
    if include_head:
        _check_head(teacher, student)

    leaves: dict[Path, Any] = {}
    entries: list[tuple[str, str]] = []
    for path, student_leaf in student.items():
        module, reason = _source_module(
            path,
            block_source=block_source,
            include_stem=include_stem,
            include_shortcut=include_shortcut,
            include_head=include_head,
        )
        if module is not None and not _teacher_module_present(teacher, module):
            module, reason = None, f"teacher has no {trees.path_name(module)}"
        if module is None:
            leaves[path] = student_leaf
            entries.append((trees.path_name(path), f"{KEPT} ({reason})"))
            continue
        t_path = (path[0],) + module + path[1 + len(module) :]
        if t_path not in teacher:
            raise ValueError(
                f"teacher variables lack {trees.path_name(t_path)}, needed for student {trees.path_name(path)}; pass the "
                "teacher's full variables ({'params': ..., 'batch_stats': ...}) from the same "
                "model family"
            )
        leaves[path], source = _map_leaf(teacher[t_path], student_leaf, t_path, path)
        entries.append((trees.path_name(path), source))
    return trees.rebuild(student_variables, leaves), TransplantReport(tuple(entries))
