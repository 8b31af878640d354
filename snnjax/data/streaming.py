"""Host-side streaming of datasets that do not fit on the device, with grain.

The source is any random-access sequence of decoded records (typically a
`tfds.data_source` split, see `open_tfds_split`). Each epoch is a grain
`MapDataset`: shuffle (seed derived from (seed, epoch)) -> per-host shard ->
record-to-example -> batch. Because it is random access, the batch at any
(epoch, position) is fixed, so resuming from a global step yields exactly the
batches an uninterrupted run would have seen.

Batches are {"image": uint8 [B, H, W, C], "label": int32 [B]}; augment and
normalise them on the device with `snnjax.data.pipeline`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from snnjax.data.pipeline import steps_per_epoch
from snnjax.data.records import to_example
from snnjax.data.tfds_source import open_builder, open_split

Batch = dict[str, np.ndarray]


def epoch_seed(seed: int, epoch: int) -> int:
    """A shuffle seed for one epoch, decorrelated across (seed, epoch) pairs."""
    # SeedSequence hashes the pair; seed + epoch would make (0, 1) == (1, 0).
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint32)[0])


def _check_shard(shard_index: int, shard_count: int) -> None:
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise ValueError(
            f"shard_index={shard_index} must lie in [0, shard_count={shard_count}); pass "
            "shard_index=jax.process_index(), shard_count=jax.process_count()."
        )


def batches_per_epoch(num_examples: int, batch_size: int, *, shard_count: int = 1) -> int:
    """Full batches per epoch per shard (remainder dropped): (N // shard_count) // B."""
    _check_shard(0, shard_count)
    return steps_per_epoch(num_examples // shard_count, batch_size)


def epoch_dataset(
    source: Sequence[Any],
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    image_key: str = "image",
    label_key: str = "label",
    shard_index: int = 0,
    shard_count: int = 1,
) -> Any:
    """The batches of one epoch as a random-access grain MapDataset.

    Args:
      source: random-access records (`len`, `source[i]` -> dict).
      batch_size: examples per batch on this shard (host); remainder dropped.
      seed, epoch: together fix the example order.
      image_key, label_key: record entries holding the image and the class id.
      shard_index, shard_count: this host's share of every epoch (multi-host:
        jax.process_index(), jax.process_count()); shards are disjoint.

    Returns:
      grain.MapDataset of length `batches_per_epoch(...)`, element i being
      {"image": uint8 [B, H, W, C], "label": int32 [B]}.
    """
    import grain

    _check_shard(shard_index, shard_count)
    batches_per_epoch(len(source), batch_size, shard_count=shard_count)  # validates sizes
    # Truncate to a multiple of shard_count so every host runs the same number of steps.
    usable = len(source) - len(source) % shard_count
    shuffled = grain.MapDataset.source(source).shuffle(seed=epoch_seed(seed, epoch))
    shard = shuffled[:usable][shard_index::shard_count]
    to_batchable = functools.partial(to_example, image_key=image_key, label_key=label_key)
    return shard.map(to_batchable).batch(batch_size, drop_remainder=True)


def iterate_batches(
    source: Sequence[Any],
    *,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    num_epochs: int | None = None,
    image_key: str = "image",
    label_key: str = "label",
    shard_index: int = 0,
    shard_count: int = 1,
    num_threads: int = 8,
    prefetch_batches: int = 8,
) -> Iterator[Batch]:
    """Yield batches from global step `start_step` on, epoch after epoch.

    Step s is batch `s % batches_per_epoch` of epoch `s // batches_per_epoch`,
    the same numbering as `snnjax.data.pipeline.batch_indices`, so a resumed run
    passes its restored step and sees the batches it would have seen.

    Args:
      num_epochs: stop after this many epochs in total (counting those before
        start_step); None streams forever.
      num_threads, prefetch_batches: grain threads and read-ahead, in whole batches
        (each thread decodes one batch; at most `prefetch_batches` are in flight).
      Other arguments: as in `epoch_dataset`.
    """
    import grain

    if start_step < 0:
        raise ValueError(f"start_step={start_step} must be >= 0 (a global step count).")
    per_epoch = batches_per_epoch(len(source), batch_size, shard_count=shard_count)
    epoch, position = divmod(start_step, per_epoch)
    read_options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch_batches)
    while num_epochs is None or epoch < num_epochs:
        batches = epoch_dataset(
            source,
            batch_size=batch_size,
            seed=seed,
            epoch=epoch,
            image_key=image_key,
            label_key=label_key,
            shard_index=shard_index,
            shard_count=shard_count,
        )
        yield from batches[position:].to_iter_dataset(read_options)
        epoch, position = epoch + 1, 0


def open_tfds_split(
    name: str, split: str, *, data_dir: str | os.PathLike[str] | None = None, download: bool = True
) -> Sequence[Any]:
    """Random-access source of one split of a tfds-prepared dataset, for `iterate_batches`."""
    builder = open_builder(name, data_dir=data_dir, download=download)
    return open_split(builder, split, data_dir=data_dir)
