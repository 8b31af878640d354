"""A fixed, stratified subset of a training split (``--config.data.train_subset=N``).

For compute-limited runs (a 2-core CPU, the IDSNN "limited training resources" regime): every arm
and seed of an experiment must see the SAME examples, so the subset depends only on the dataset and
``N`` (and an explicit ``seed``, 0 by default), never on the run's seed. The test split is untouched.
"""

from __future__ import annotations

import numpy as np

from snnjax.data.errors import InvalidDatasetOptionError
from snnjax.data.types import ArrayDataset, DatasetSplits


def stratified_subset(labels: np.ndarray, size: int, num_classes: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``size`` examples with class proportions as in ``labels``.

    Each class c gets ``floor(size * n_c / N)`` examples; the remaining ``size - sum`` go, one each,
    to the classes with the largest fractional parts (ties: lower class id). Within a class the
    examples are a uniform random choice made with ``np.random.default_rng(seed)``.

    Args:
      labels: int [N] class ids.
      size: 1 <= size <= N.
      num_classes: number of classes.
      seed: the subset's own seed (not the run's).
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= n:
        raise InvalidDatasetOptionError(
            f"train_subset={size!r} is invalid for a training split of {n} examples; pass an int in "
            f"[1, {n}], or 0 for the whole split (--config.data.train_subset)."
        )
    counts = np.bincount(labels, minlength=num_classes)
    exact = size * counts / n
    quota = np.floor(exact).astype(np.int64)
    remainder = size - int(quota.sum())
    order = sorted(range(num_classes), key=lambda c: (-(exact[c] - quota[c]), c))
    for c in order[:remainder]:
        quota[c] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), int(quota[c]), replace=False) for c in range(num_classes)]
    return np.sort(np.concatenate(chosen))


def take_train_subset(splits: DatasetSplits, size: int, seed: int = 0) -> DatasetSplits:
    """``splits`` with its training split cut to a stratified subset of ``size`` (0: unchanged).

    Normalisation statistics are kept from the full training split, so a subset run normalises its
    inputs exactly as a full run does.
    """
    if size == 0:
        return splits
    train = splits.train
    idx = stratified_subset(train.labels, size, train.num_classes, seed)
    subset = ArrayDataset(train.images[idx], train.labels[idx], train.num_classes)
    return DatasetSplits(splits.name, subset, splits.test, splits.mean, splits.std)
