"""Training and evaluation batches streamed from a tfds ArrayRecord dataset, one process's share at a time.

The records stay on disk: ``tfds.builder_from_directory`` / ``tfds.builder`` give random access
(``as_data_source``, no TensorFlow), grain reads them with worker threads (or processes), and
:mod:`snnjax.data.host_transforms` decodes and crops each image on the host. Host memory holds only
the batches in flight, whatever the dataset's size.

Order and sharding (B = global batch, P = ``process_count``, b = B / P per process):

- epoch e's order is the in-memory loop's, :func:`snnjax.data.batches.epoch_permutation` of
  ``jax.random.key(seed)`` (computed on the host CPU); step s is batch ``s % S`` of epoch ``s // S``
  with ``S = N // B`` (the last ``N % B`` examples of each epoch's order are skipped), exactly as
  :func:`snnjax.data.batches.batch_indices`. So a dataset decoded as stored trains on the same
  batches streamed as in memory (the device then applies the same crop, flip and normalisation);
- the global batch of a step is ``order[pos * B:(pos + 1) * B]`` and process p reads its
  contiguous slice ``[p * b, (p + 1) * b)``: the shards are disjoint, their union is the global
  batch, and the global batch does not depend on P;
- the augmentation of an example depends on (seed, epoch, record index) only.

So the batch at (epoch, position) is a pure function of the seed and ``train_batches(start_step)``
resumes exactly. Evaluation walks the test split in order in global batches of ``eval_batch_size``,
each process taking its slice; positions past the end repeat the last example with mask False, so
across processes every test example is counted exactly once.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from snnjax.data.errors import DatasetCorruptError, DatasetNotFoundError, InvalidDatasetOptionError
from snnjax.data.host_transforms import HostTransform, example_rng

Batch = dict[str, np.ndarray]


def _imagenet_hint(name: str, data_dir: Any) -> str:
    target = data_dir if data_dir is not None else "~/tensorflow_datasets"
    manual = (
        f" ({name} cannot be downloaded by tfds: put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar "
        f"into {target}/downloads/manual/ first)"
        if name.startswith("imagenet2012")
        else ""
    )
    return (
        f"Fix: where TensorFlow is installed run `tfds build {name} --file_format=array_record "
        f"--data_dir={target}`{manual} and copy the resulting {name.split(':')[0]}/ folder into {target}; "
        "or convert an image folder with `python -m snnjax.data.write_records --src DIR --out DIR` and pass "
        "that directory as the dataset."
    )


def open_builder(dataset: str | os.PathLike[str], *, data_dir: str | os.PathLike[str] | None = None) -> Any:
    """A prepared tfds builder from a dataset directory (holding ``dataset_info.json``) or a tfds name.

    Args:
      dataset: a directory written by :mod:`snnjax.data.write_records` or ``tfds build``
        (``<data_dir>/<name>/<version>``), or a registered tfds name ("imagenet2012") looked up in ``data_dir``.
    """
    import tensorflow_datasets as tfds

    path = pathlib.Path(dataset).expanduser()
    if (path / "dataset_info.json").is_file():
        return tfds.builder_from_directory(str(path))
    if os.sep in str(dataset) or path.exists():
        raise DatasetNotFoundError(
            f"{path} is not a prepared dataset directory (no dataset_info.json). Fix: pass the folder that "
            "write_records --out created, or a tfds <data_dir>/<name>/<version> folder."
        )
    try:
        builder = tfds.builder(str(dataset), data_dir=data_dir)
    except tfds.core.DatasetNotFoundError as e:
        raise DatasetNotFoundError(
            f"tfds has no dataset named {str(dataset)!r} and no such directory exists. Fix: pass a dataset "
            "directory (write_records --out) or a tfds name such as imagenet2012."
        ) from e
    if not builder.is_prepared():
        raise DatasetNotFoundError(
            f"tfds dataset {str(dataset)!r} is not prepared under data_dir={data_dir} (looked in "
            f"{builder.data_dir}). {_imagenet_hint(str(dataset), data_dir)}"
        )
    return builder


def check_split_files(builder: Any, split: str) -> None:
    """Every shard of ``split`` exists and holds the record count the metadata promises; else a one-line error."""
    from array_record.python import array_record_module

    info = builder.info.splits[split]
    for path, expected in zip(info.filepaths, info.shard_lengths):
        path = str(path)
        if not os.path.isfile(path):
            raise DatasetNotFoundError(
                f"shard {path} of split {split!r} is missing. Fix: copy it again from the prepared dataset, "
                "or rerun the conversion."
            )
        try:
            reader = array_record_module.ArrayRecordReader(path)
            found = int(reader.num_records())
            reader.close()
        except Exception as e:  # array_record raises RuntimeError/ValueError with C++ messages
            raise DatasetCorruptError(
                f"shard {path} of split {split!r} is not a readable ArrayRecord file ({e}). Fix: copy it again."
            ) from None
        if found != expected:
            raise DatasetCorruptError(
                f"shard {path} of split {split!r} holds {found} records, its dataset_info.json says {expected} "
                "(truncated copy?). Fix: copy it again, or rerun the conversion."
            )


class RecordReader:
    """Random access to one split that names the shard file in every read error.

    ``reader[i]`` -> (encoded image bytes or uint8 array, int label) of record i.
    """

    def __init__(self, builder: Any, split: str, *, image_key: str = "image", label_key: str = "label"):
        import tensorflow_datasets as tfds

        features = builder.info.features
        for option, key in (("image_key", image_key), ("label_key", label_key)):
            if key not in features:
                raise InvalidDatasetOptionError(
                    f"dataset {builder.info.name!r} has no feature {key!r} (option {option}); features: "
                    f"{sorted(features.keys())}. Fix: pass {option}=<one of them>."
                )
        if split.split("[")[0] not in builder.info.splits:
            raise InvalidDatasetOptionError(
                f"dataset {builder.info.name!r} has no split {split!r}; splits: {sorted(builder.info.splits)}."
            )
        check_split_files(builder, split.split("[")[0])
        # Image features hold encoded bytes: skip tfds' full-size decode, host_transforms decodes (and
        # for JPEG, at a reduced DCT scale).
        decoders = (
            {image_key: tfds.decode.SkipDecoding()} if isinstance(features[image_key], tfds.features.Image) else None
        )
        self.split, self.image_key, self.label_key = split, image_key, label_key
        self.source = builder.as_data_source(split=split, decoders=decoders)

    def __len__(self) -> int:
        return len(self.source)

    def _file_of(self, index: int) -> str:
        inner = getattr(self.source, "data_source", None)  # array_record's ArrayRecordDataSource
        try:
            reader_index, _ = inner._reader_idx_and_position(index)
            return str(inner._paths[reader_index])
        except Exception:  # private API: fall back to naming the split
            return f"(a shard of split {self.split!r})"

    def __getitem__(self, index: int) -> tuple[Any, int]:
        index = int(index)
        try:
            record = self.source[index]
        except Exception as e:
            raise DatasetCorruptError(
                f"cannot read record {index} of split {self.split!r} from {self._file_of(index)} "
                f"({type(e).__name__}: {e}). Fix: copy that shard again, or rerun the conversion."
            ) from None
        image = record.get(self.image_key)
        if image is None or (isinstance(image, bytes) and not image):
            raise DatasetCorruptError(
                f"record {index} of split {self.split!r} in {self._file_of(index)} is empty (corrupt shard). "
                "Fix: copy that shard again, or rerun the conversion."
            )
        return image, int(record[self.label_key])

    def labels(self) -> np.ndarray:
        """int32 [N]: every record's label, in record order (images are read but not decoded)."""
        return np.fromiter((self[i][1] for i in range(len(self))), np.int32, count=len(self))


@dataclasses.dataclass(frozen=True)
class _Example:
    """grain map function: record index -> {"image": uint8 [H, W, C], "label": int32 []}. Picklable."""

    reader: RecordReader
    transform: HostTransform
    seed: int
    epoch: int

    def __call__(self, index: int) -> Batch:
        image, label = self.reader[index]
        rng = example_rng(self.seed, self.epoch, index) if self.transform.needs_rng else None
        where = f"record {int(index)} of split {self.reader.split!r}"
        return {"image": self.transform(image, rng, where=where), "label": np.int32(label)}


def _partition(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} must lie in [0, process_count={process_count}).")
    return int(process_index), int(process_count)


def _per_process(batch_size: int, process_count: int, what: str) -> int:
    if batch_size < 1 or batch_size % process_count:
        raise InvalidDatasetOptionError(
            f"{what}={batch_size} must be a positive multiple of the process count {process_count} "
            f"(each process reads {what} / {process_count} examples). Fix: round it to a multiple."
        )
    return batch_size // process_count


class StreamSource:
    """This process's training and evaluation batches of a record dataset.

    Attributes:
      num_examples, num_test_examples: N of the train and test splits.
      num_classes, class_names: from the ClassLabel feature.
      image_shape: [H, W, C] of every batch image.
      steps_per_epoch: N // B.
    """

    def __init__(
        self,
        train: RecordReader,
        test: RecordReader,
        *,
        class_names: Sequence[str],
        train_transform: HostTransform,
        eval_transform: HostTransform,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        workers: int = 2,
        worker_processes: bool = False,
        prefetch_batches: int = 2,
        process_index: int | None = None,
        process_count: int | None = None,
        train_indices: np.ndarray | None = None,
    ):
        """Args:
        train, test: the two splits.
        class_names: names of the classes, index = label.
        train_transform, eval_transform: host decode/crop of train and test images.
        batch_size, eval_batch_size: GLOBAL batch sizes (all processes together); each must be a
          multiple of the process count.
        seed: fixes the example order and augmentation.
        workers: grain worker threads (or processes when ``worker_processes``).
        prefetch_batches: batches read ahead per epoch iterator.
        process_index, process_count: this process's share (default: jax.process_index()/process_count()).
        train_indices: train only on these records (int [n], e.g. a stratified subset); None: all.
        """
        from snnjax.data.batches import steps_per_epoch

        self.train, self.test = train, test
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        self.train_transform, self.eval_transform = train_transform, eval_transform
        self.seed, self.workers, self.worker_processes = int(seed), int(workers), bool(worker_processes)
        self.prefetch_batches = int(prefetch_batches)
        self.process_index, self.process_count = _partition(process_index, process_count)
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.local_batch_size = _per_process(self.batch_size, self.process_count, "batch_size")
        self.local_eval_batch_size = _per_process(self.eval_batch_size, self.process_count, "eval_batch_size")
        self.train_indices = None if train_indices is None else np.asarray(train_indices, np.int64)
        self.num_examples = len(train) if train_indices is None else len(self.train_indices)
        self.num_test_examples = len(test)
        if self.num_test_examples < 1:
            raise DatasetNotFoundError(f"test split {test.split!r} is empty; evaluation needs at least one record.")
        self.steps_per_epoch = steps_per_epoch(self.num_examples, self.batch_size)
        train_shape = train_transform.output_shape(self._stored_shape(train, train_transform))
        eval_shape = eval_transform.output_shape(self._stored_shape(test, eval_transform))
        if train_shape != eval_shape:
            raise InvalidDatasetOptionError(
                f"train images come out {list(train_shape)} but test images {list(eval_shape)}; both must match "
                "(decoded as stored, images must all have one size). Fix: set an image size to train on "
                "random-resized crops and evaluate on center crops."
            )
        self.image_shape = train_shape

    @staticmethod
    def _stored_shape(reader: RecordReader, transform: HostTransform) -> tuple[int, int, int] | None:
        if transform.kind != "decode" or transform.image_shape is not None:
            return None
        image, _ = reader[0]
        return tuple(HostTransform("decode", channels=transform.channels)(image, where="record 0").shape)

    def _decode_transform(self, transform: HostTransform) -> HostTransform:
        if transform.kind == "decode" and transform.image_shape is None:
            return dataclasses.replace(transform, image_shape=self.image_shape)
        return transform

    def epoch_order(self, epoch: int) -> np.ndarray:
        """int64 [N]: the record indices of epoch ``epoch`` in training order (all processes)."""
        import jax

        from snnjax.data.batches import epoch_permutation

        try:  # on the host CPU, off the accelerator; threefry and the sort give the same bits anywhere
            device = jax.local_devices(backend="cpu")[0]
        except RuntimeError:  # JAX_PLATFORMS without cpu
            device = None
        with jax.default_device(device):
            order = np.asarray(epoch_permutation(jax.random.key(self.seed), epoch, self.num_examples), np.int64)
        return order if self.train_indices is None else self.train_indices[order]

    def local_indices(self, epoch: int) -> np.ndarray:
        """int64 [S * b]: this process's record indices of one epoch, batch after batch."""
        steps, batch, local = self.steps_per_epoch, self.batch_size, self.local_batch_size
        order = self.epoch_order(epoch)[: steps * batch].reshape(steps, self.process_count, local)
        return order[:, self.process_index, :].reshape(-1)

    def _iterate(self, dataset: Any) -> Iterator[Any]:
        import grain

        if self.worker_processes:
            from absl import flags

            # grain's worker processes read absl flags; outside an absl app (tests, notebooks) their
            # defaults are what we want, so mark them parsed rather than failing.
            if not flags.FLAGS.is_parsed():
                flags.FLAGS.mark_as_parsed()
            # Each worker process builds whole batches; grain keeps their order.
            read = grain.ReadOptions(num_threads=1, prefetch_buffer_size=1)
            iterable = dataset.to_iter_dataset(read).mp_prefetch(
                grain.MultiprocessingOptions(num_workers=self.workers, per_worker_buffer_size=self.prefetch_batches)
            )
        else:
            read = grain.ReadOptions(num_threads=self.workers, prefetch_buffer_size=self.prefetch_batches)
            iterable = dataset.to_iter_dataset(read)
        return iter(iterable)

    def epoch_batches(self, epoch: int, start_position: int = 0) -> Iterator[Batch]:
        """This process's batches of one epoch from ``start_position`` on:
        {"image": uint8 [b, H, W, C], "label": int32 [b]}."""
        import grain

        local = self.local_batch_size
        indices = self.local_indices(epoch)[start_position * local :]
        example = _Example(self.train, self._decode_transform(self.train_transform), self.seed, epoch)
        dataset = grain.MapDataset.source(indices).map(example).batch(local, drop_remainder=True)
        return self._iterate(dataset)

    def train_batches(self, start_step: int = 0) -> Iterator[Batch]:
        """This process's training batches from global step ``start_step`` on, epoch after epoch, forever."""
        if start_step < 0:
            raise ValueError(f"start_step={start_step} must be >= 0 (a global step count).")
        epoch, position = divmod(int(start_step), self.steps_per_epoch)
        while True:
            yield from self.epoch_batches(epoch, position)
            epoch, position = epoch + 1, 0

    @property
    def num_eval_batches(self) -> int:
        """ceil(N_test / eval_batch_size) global evaluation batches."""
        return math.ceil(self.num_test_examples / self.eval_batch_size)

    def eval_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(record indices int64 [K, b_eval], mask bool [K, b_eval]) of this process's eval batches."""
        batches, batch, local = self.num_eval_batches, self.eval_batch_size, self.local_eval_batch_size
        positions = np.arange(batches * batch).reshape(batches, self.process_count, local)[:, self.process_index]
        mask = positions < self.num_test_examples
        return np.minimum(positions, self.num_test_examples - 1), mask

    def eval_batches(self) -> Iterator[tuple[Batch, np.ndarray]]:
        """(batch, mask bool [b_eval]) for every eval batch of this process; weight metrics by mask."""
        import grain

        indices, masks = self.eval_positions()
        example = _Example(self.test, self._decode_transform(self.eval_transform), self.seed, 0)
        dataset = grain.MapDataset.source(indices.reshape(-1)).map(example).batch(self.local_eval_batch_size)
        yield from zip(self._iterate(dataset), masks)


@dataclasses.dataclass(frozen=True)
class SplitSize:
    """The size of a streamed split (what the loop reads of ``DatasetSplits.train``)."""

    num_examples: int


@dataclasses.dataclass(frozen=True, eq=False)
class RecordSet:
    """A record dataset opened for streaming; reads like :class:`snnjax.data.DatasetSplits` where the loop does.

    ``name``, ``num_classes``, ``image_shape``, ``mean``/``std`` and ``train.num_examples`` are those of
    the whole dataset (the train subset if one is set). ``test`` is NOT the test split: it is an
    in-memory sample of its first ``SAMPLE_SIZE`` images, for helpers that want a few inputs (the spike
    summary); evaluation streams the whole split (:meth:`stream`, :meth:`StreamSource.eval_batches`).
    """

    name: str
    train_reader: RecordReader
    test_reader: RecordReader
    class_names: tuple[str, ...]
    train_transform: HostTransform
    eval_transform: HostTransform
    image_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    test: Any  # ArrayDataset sample of the test split
    train_indices: np.ndarray | None = None
    workers: int = 2
    worker_processes: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train(self) -> SplitSize:
        n = len(self.train_reader) if self.train_indices is None else len(self.train_indices)
        return SplitSize(n)

    def stream(
        self,
        *,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        process_index: int | None = None,
        process_count: int | None = None,
    ) -> StreamSource:
        """This process's :class:`StreamSource` for global batch sizes and a seed."""
        return StreamSource(
            self.train_reader,
            self.test_reader,
            class_names=self.class_names,
            train_transform=self.train_transform,
            eval_transform=self.eval_transform,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            seed=seed,
            workers=self.workers,
            worker_processes=self.worker_processes,
            process_index=process_index,
            process_count=process_count,
            train_indices=self.train_indices,
        )


SAMPLE_SIZE = 256  # test images RecordSet.test holds in memory
STATS_SAMPLE = 2_048  # train images the statistics are estimated from when none are stored


def _decode_all(reader: RecordReader, transform: HostTransform, indices: Sequence[int]) -> np.ndarray:
    return np.stack([transform(reader[i][0], where=f"record {i} of split {reader.split!r}") for i in indices])


def dataset_stats(
    directory: pathlib.Path | None, reader: RecordReader, transform: HostTransform
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) on the [0, 1] scale of the train split.

    ``<directory>/snnjax_stats.json`` when present (``write_records --dataset`` stores the exact
    statistics of the whole train split there); else those of the first ``STATS_SAMPLE`` train
    records (record order, decoded by the eval transform): the same numbers on every process.
    """
    import json

    from snnjax.data.write_records import STATS_FILE

    if directory is not None and (directory / STATS_FILE).is_file():
        stats = json.loads((directory / STATS_FILE).read_text())
        return tuple(float(m) for m in stats["mean"]), tuple(float(v) for v in stats["std"])
    # Running float64 sums: memory stays one image whatever the sample size.
    count, total, squares = 0, 0.0, 0.0
    for i in range(min(STATS_SAMPLE, len(reader))):
        pixels = transform(reader[i][0], where=f"record {i} of split {reader.split!r}").astype(np.float64) / 255.0
        pixels = pixels.reshape(-1, pixels.shape[-1])
        count, total, squares = count + len(pixels), total + pixels.sum(0), squares + (pixels**2).sum(0)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std = np.where(std > 0, std, 1.0)  # as channel_stats: a constant channel stays centred
    return tuple(float(m) for m in mean), tuple(float(v) for v in std)


def open_records(
    dataset: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    train_split: str = "train",
    test_split: str = "test",
    image_key: str = "image",
    label_key: str = "label",
    image_size: int = 0,
    channels: int | None = None,
    flip: bool = True,
    workers: int = 2,
    worker_processes: bool = False,
    train_subset: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    use_dataset_stats: bool = True,
) -> RecordSet:
    """Open a dataset directory (``write_records --out``, a tfds ``<name>/<version>`` folder) or prepared tfds name.

    Args:
      image_size: 0 decodes images as stored (all one size; augment on the device); S > 0 trains on
        random-resized crops of S x S (with flips when ``flip``) and evaluates on center crops of S x S.
      channels: 1 or 3 (default: the Image feature's declared channel count, else 3).
      workers, worker_processes: grain worker threads, or processes.
      train_subset: > 0 trains on that many records, the stratified subset
        :func:`snnjax.data.subset.stratified_subset` picks from the labels (as ``data.train_subset``
        does in memory); reading the labels reads every train record once.
      mean, std: normalisation constants (default: :func:`dataset_stats`, or 0 / 1 placeholders when
        ``use_dataset_stats`` is False because the caller sets its own).
      Others: as in :class:`RecordReader`.
    """
    from snnjax.data.subset import stratified_subset
    from snnjax.data.types import ArrayDataset

    builder = open_builder(dataset, data_dir=data_dir)
    train = RecordReader(builder, train_split, image_key=image_key, label_key=label_key)
    test = RecordReader(builder, test_split, image_key=image_key, label_key=label_key)
    if len(test) < 1 or len(train) < 1:
        raise DatasetNotFoundError(f"dataset {builder.info.name!r}: split {train_split!r} or {test_split!r} is empty.")
    features = builder.info.features
    names = getattr(features[label_key], "names", None)
    if not names:
        raise InvalidDatasetOptionError(
            f"feature {label_key!r} of {builder.info.name!r} declares no class names (not a ClassLabel)."
        )
    if channels is None:
        shape = getattr(features[image_key], "shape", None)
        channels = int(shape[-1]) if shape and shape[-1] in (1, 3) else 3
    if image_size:
        train_t = HostTransform("random_resized_crop", size=image_size, channels=channels, flip=flip)
        eval_t = HostTransform("resize_center_crop", size=image_size, channels=channels)
    else:
        stored = HostTransform("decode", channels=channels)(train[0][0], where=f"record 0 of split {train_split!r}")
        train_t = eval_t = HostTransform("decode", channels=channels, image_shape=tuple(stored.shape))
    image_shape = train_t.output_shape()
    sample_ids = range(min(SAMPLE_SIZE, len(test)))
    sample = ArrayDataset(
        _decode_all(test, eval_t, sample_ids), np.array([test[i][1] for i in sample_ids], np.int32), len(names)
    )
    directory = pathlib.Path(dataset).expanduser() if (pathlib.Path(dataset).expanduser()).is_dir() else None
    if (mean is None or std is None) and not use_dataset_stats:
        mean, std = (0.0,) * image_shape[-1], (1.0,) * image_shape[-1]
    elif mean is None or std is None:
        mean, std = dataset_stats(directory, train, eval_t)
    train_indices = None
    if train_subset:
        train_indices = stratified_subset(train.labels(), int(train_subset), len(names))
    return RecordSet(
        name=f"records:{dataset}",
        train_reader=train,
        test_reader=test,
        class_names=tuple(names),
        train_transform=train_t,
        eval_transform=eval_t,
        image_shape=image_shape,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(v) for v in std),
        test=sample,
        train_indices=train_indices,
        workers=workers,
        worker_processes=worker_processes,
    )


def open_stream(
    dataset: str | os.PathLike[str],
    *,
    batch_size: int,
    eval_batch_size: int,
    seed: int,
    process_index: int | None = None,
    process_count: int | None = None,
    **options: Any,
) -> StreamSource:
    """``open_records(dataset, **options).stream(...)``: this process's batches of a record dataset."""
    return open_records(dataset, **options).stream(
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
    )
