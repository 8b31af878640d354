"""Variable trees as flat ``{path: leaf}`` maps, and the report of a weight transfer between two trees.

Both weight transfers of snnjax (IDSNN's transplant, the pretraining ANN -> SNN copy) flatten the
nested variables (``{"params": {...}, "batch_stats": {...}}``) with :func:`flatten`, decide a value
per target leaf, rebuild the target's structure with :func:`rebuild`, and describe every target leaf
in a :class:`TransferReport`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

Path = tuple[str, ...]
KEPT = "kept initialisation"


def flatten(tree: Mapping, prefix: Path = ()) -> dict[Path, Any]:
    """``{path: leaf}`` of a nested mapping (dict or FrozenDict), in insertion order."""
    flat: dict[Path, Any] = {}
    for key, value in tree.items():
        path = prefix + (str(key),)
        if isinstance(value, Mapping):
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def rebuild(tree: Mapping, leaves: Mapping[Path, Any], prefix: Path = ()) -> dict:
    """Plain nested dicts with ``tree``'s structure (empty sub-dicts included) and ``leaves``."""
    out = {}
    for key, value in tree.items():
        path = prefix + (str(key),)
        out[key] = rebuild(value, leaves, path) if isinstance(value, Mapping) else leaves[path]
    return out


def path_name(path: Path) -> str:
    """``("params", "stem_conv", "kernel") -> "params/stem_conv/kernel"``."""
    return "/".join(path)


@dataclasses.dataclass(frozen=True)
class TransferReport:
    """Where every target leaf of a weight transfer came from.

    Attributes:
      entries: one ``(target_path, source)`` pair per target leaf, in the target tree's order.
        ``target_path`` looks like ``'params/stage1_block0/conv1/kernel'``; ``source`` is either a
        source path, possibly with a note on how it was mapped (``'params/stage1_block2/conv1/kernel
        [tiled 64->128 in, 128->128 out]'``), or ``'kept initialisation'`` followed by the reason in
        parentheses.
      unused: source leaves that fed no target leaf (reported by the pretraining copy).
    """

    entries: tuple[tuple[str, str], ...]
    unused: tuple[str, ...] = ()

    def kept_paths(self, reason: str | None = None) -> tuple[str, ...]:
        """Target leaves that keep their initialisation (only those kept for ``reason``, if given)."""
        want = KEPT if reason is None else f"{KEPT} ({reason})"
        return tuple(path for path, source in self.entries if source.startswith(want))

    @property
    def kept(self) -> int:
        """Number of target leaves that keep their initialisation."""
        return len(self.kept_paths())

    @property
    def transplanted(self) -> int:
        """Number of target leaves taken from the source."""
        return len(self.entries) - self.kept

    @property
    def copied(self) -> tuple[str, ...]:
        """Target leaves taken from the source."""
        return tuple(path for path, source in self.entries if not source.startswith(KEPT))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{'transplanted': n, 'kept': m, 'entries': {target_path: source}}``."""
        return {"transplanted": self.transplanted, "kept": self.kept, "entries": dict(self.entries)}

    def to_text(self, title: str = "transplant", source: str = "teacher") -> str:
        """An aligned two-column table (target path <- source) with a summary line, for logs."""
        width = max((len(path) for path, _ in self.entries), default=0)
        lines = [f"{title}: {self.transplanted} leaves from the {source}, {self.kept} kept as initialised"]
        lines += [f"  {path.ljust(width)}  <-  {src}" for path, src in self.entries]
        if self.unused:
            lines += [f"unused {source} leaves ({len(self.unused)}):"] + [f"  {p}" for p in self.unused]
        return "\n".join(lines)
