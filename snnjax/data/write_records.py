"""Convert an image folder (torchvision ``ImageFolder`` layout) once into a tfds-prepared ArrayRecord dataset.

    python -m snnjax.data.write_records --src DIR --out DIR [--test-fraction 0.1] [--channels 3]
    python -m snnjax.data.write_records --dataset fashion_mnist --out DIR   # an in-memory dataset, as PNGs

Input layout, ``root/<class>/<image>`` as torchvision's ``ImageFolder`` (class ids follow the
class folder names sorted as strings). Train and test come either

- from ``SRC/train/<class>/...`` and ``SRC/test/<class>/...`` when both subfolders exist (the
  test classes must be among the train classes), or
- from ``SRC/<class>/...`` split per class: ``round(test_fraction * n_class)`` images of every
  class go to test, chosen by a NumPy permutation seeded with ``--seed`` (default 0), so the
  split is the same on every machine.

Output: ``OUT`` is one tfds dataset directory (what ``tfds build`` leaves in
``<data_dir>/<name>/<version>/``): ``dataset_info.json``, ``features.json`` and shards
``<name>-<split>.array_record-XXXXX-of-YYYYY`` with features
``{"image": tfds.features.Image(shape=(None, None, C)), "label": tfds.features.ClassLabel(names)}``,
the same schema as tfds' ``imagenet2012``. The image bytes are the files' bytes as they are
(JPEG, PNG, ...; never decoded and re-encoded: ImageNet's decoded pixels would be ~190 GB).
Reading needs no TensorFlow: ``tfds.builder_from_directory(OUT).as_data_source("train")``
(see :mod:`snnjax.data.stream_source`).

Atomic and resumable: everything is written under ``OUT.incomplete/`` and renamed to ``OUT``
only when complete. Each shard is written to a temporary name and renamed when closed, so a
shard with its final name is complete; a rerun of the same command (same input files, same
options, recorded in ``OUT.incomplete/plan.json``) skips those shards and writes the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from snnjax.data.errors import DatasetCorruptError, DatasetError, DatasetNotFoundError, InvalidDatasetOptionError

# torchvision.datasets.folder.IMG_EXTENSIONS
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
VERSION = "1.0.0"
PLAN_FILE = "plan.json"
INCOMPLETE_SUFFIX = ".incomplete"


@dataclasses.dataclass(frozen=True)
class Example:
    """One image file and its class id."""

    path: str
    label: int


@dataclasses.dataclass(frozen=True)
class FolderPlan:
    """What a conversion writes: class names and, per split, the examples in written order."""

    class_names: tuple[str, ...]
    splits: dict[str, tuple[Example, ...]]


def _is_image(path: pathlib.Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def scan_class_folders(root: pathlib.Path) -> dict[str, list[str]]:
    """``root/<class>/<image>`` -> {class name: sorted image paths} (classes sorted by name).

    Raises DatasetNotFoundError for a missing root, a root without class folders, or a class
    folder without images.
    """
    if not root.is_dir():
        raise DatasetNotFoundError(f"--src {root} is not a directory. Fix: pass a folder laid out as <class>/<image>.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetNotFoundError(
            f"{root} has no class folders. Fix: lay the images out as {root}/<class>/<image> (torchvision ImageFolder)."
        )
    found = {}
    for name in classes:
        # Walk subfolders too, as ImageFolder does.
        images = sorted(str(p) for p in (root / name).rglob("*") if _is_image(p))
        if not images:
            raise DatasetNotFoundError(
                f"class folder {root / name} holds no images ({', '.join(IMAGE_EXTENSIONS)}). "
                "Fix: add images or remove the folder."
            )
        found[name] = images
    return found


def split_per_class(
    found: dict[str, list[str]], test_fraction: float, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Stratified split: per class, ``round(test_fraction * n)`` images (by a seeded permutation) go to test.

    Returns (train, test) lists of (class name, path) in class then path order.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise InvalidDatasetOptionError(f"--test-fraction={test_fraction} must lie in [0, 1). Fix: e.g. 0.1.")
    train, test = [], []
    for class_index, (name, paths) in enumerate(found.items()):
        # One generator per class, seeded by (seed, class index): adding a class leaves the others' split alone.
        order = np.random.default_rng([seed, class_index]).permutation(len(paths))
        n_test = int(round(test_fraction * len(paths)))
        is_test = np.zeros(len(paths), bool)
        is_test[order[:n_test]] = True
        for path, held_out in zip(paths, is_test):
            (test if held_out else train).append((name, path))
    return train, test


def plan_folder(src: str | os.PathLike[str], *, test_fraction: float, seed: int) -> FolderPlan:
    """Find classes and images under ``src`` and fix the train/test examples and their written order.

    Examples are written in an order shuffled with ``seed`` (per split) so that every shard mixes
    classes; readers shuffle again per epoch.
    """
    root = pathlib.Path(src)
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir() and test_dir.is_dir():
        train_found, test_found = scan_class_folders(train_dir), scan_class_folders(test_dir)
        unknown = sorted(set(test_found) - set(train_found))
        if unknown:
            raise DatasetCorruptError(
                f"{test_dir} has classes {unknown} that {train_dir} lacks. Fix: give train the same class folders."
            )
        class_names = tuple(train_found)
        pairs = {
            "train": [(c, p) for c, ps in train_found.items() for p in ps],
            "test": [(c, p) for c, ps in test_found.items() for p in ps],
        }
    else:
        found = scan_class_folders(root)
        class_names = tuple(found)
        train, test = split_per_class(found, test_fraction, seed)
        pairs = {"train": train, "test": test}
    label_of = {name: i for i, name in enumerate(class_names)}
    splits = {}
    for split_index, (split, items) in enumerate(pairs.items()):
        if not items:
            continue
        order = np.random.default_rng([seed, 1000 + split_index]).permutation(len(items))
        splits[split] = tuple(Example(items[i][1], label_of[items[i][0]]) for i in order)
    return FolderPlan(class_names, splits)


def shard_bounds(num_examples: int, shard_size: int) -> list[tuple[int, int]]:
    """[start, stop) of each shard: ceil(N / shard_size) shards of shard_size examples (the last smaller)."""
    if shard_size < 1:
        raise InvalidDatasetOptionError(f"--shard-size={shard_size} must be >= 1 examples.")
    return [(s, min(s + shard_size, num_examples)) for s in range(0, num_examples, shard_size)]


def shard_name(dataset_name: str, split: str, index: int, count: int) -> str:
    """tfds' default file name of a shard: ``<name>-<split>.array_record-00000-of-00010``."""
    return f"{dataset_name}-{split}.array_record-{index:05d}-of-{count:05d}"


def features_for(class_names: Sequence[str], channels: int):
    """The tfds features of every written record (encoded image bytes and a ClassLabel)."""
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict(
        {
            # An Image feature given encoded bytes stores them unchanged (no TensorFlow needed);
            # the shape only declares the channel count readers should decode to.
            "image": tfds.features.Image(shape=(None, None, channels)),
            "label": tfds.features.ClassLabel(names=list(class_names)),
        }
    )


def read_image_bytes(path: str) -> bytes:
    """The file's bytes, after checking that PIL can identify and parse it; one-line error naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            data = f.read()
        with Image.open(path) as image:
            image.verify()  # parses the structure without decoding every pixel
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise DatasetCorruptError(
            f"cannot read image {path} ({type(e).__name__}: {e}). Fix: replace or delete that file."
        ) from None
    return data


def write_shard(path: pathlib.Path, records: Sequence[bytes]) -> None:
    """Write serialized records to ``path`` atomically (temporary name, then rename)."""
    from array_record.python import array_record_module

    tmp = path.with_name(path.name + ".tmp")
    # group_size:1 is what tfds uses for random access: one record per chunk.
    writer = array_record_module.ArrayRecordWriter(str(tmp), "group_size:1")
    try:
        for record in records:
            writer.write(record)
    finally:
        writer.close()
    os.replace(tmp, path)


def count_records(path: pathlib.Path) -> int:
    from array_record.python import array_record_module

    reader = array_record_module.ArrayRecordReader(str(path))
    try:
        return int(reader.num_records())
    finally:
        reader.close()


def _plan_digest(plan: FolderPlan, options: dict) -> dict:
    listing = json.dumps({s: [(e.path, e.label) for e in ex] for s, ex in plan.splits.items()}, sort_keys=True).encode()
    return {"class_names": list(plan.class_names), "files_sha256": hashlib.sha256(listing).hexdigest(), **options}


def _check_or_write_plan(work: pathlib.Path, digest: dict, out: pathlib.Path) -> None:
    plan_path = work / PLAN_FILE
    if plan_path.exists():
        old = json.loads(plan_path.read_text())
        if old != digest:
            changed = sorted(k for k in set(old) | set(digest) if old.get(k) != digest.get(k))
            raise InvalidDatasetOptionError(
                f"{work} holds an unfinished conversion of other input or options (differs in {changed}). "
                f"Fix: rerun the original command to finish it, or delete {work} to start over into {out}."
            )
    else:
        work.mkdir(parents=True, exist_ok=True)
        plan_path.write_text(json.dumps(digest, indent=1))


def write_metadata(
    directory: pathlib.Path, dataset_name: str, features, shard_lengths: dict[str, list[int]], description: str
) -> None:
    """``dataset_info.json`` and ``features.json`` so that ``tfds.builder_from_directory`` reads the shards."""
    import tensorflow_datasets as tfds

    split_infos = []
    for split, lengths in shard_lengths.items():
        template = tfds.core.ShardedFileTemplate(
            data_dir=directory, dataset_name=dataset_name, split=split, filetype_suffix="array_record"
        )
        num_bytes = sum(
            (directory / shard_name(dataset_name, split, i, len(lengths))).stat().st_size for i in range(len(lengths))
        )
        split_infos.append(
            tfds.core.SplitInfo(
                name=split, shard_lengths=list(lengths), num_bytes=num_bytes, filename_template=template
            )
        )
    identity = tfds.core.DatasetIdentity(
        name=dataset_name, version=tfds.core.Version(VERSION), data_dir=str(directory), module_name=""
    )
    info = tfds.core.DatasetInfo(builder=identity, features=features, description=description)
    info.set_splits(tfds.core.SplitDict(split_infos))
    info.set_file_format("array_record")
    info.write_to_directory(directory)


def dataset_name_for(src: str | os.PathLike[str]) -> str:
    """A tfds-valid dataset name from the source folder's name (snake case, starting with a letter)."""
    name = re.sub(r"[^a-z0-9_]+", "_", pathlib.Path(os.path.abspath(src)).name.lower()).strip("_")
    return name if name and name[0].isalpha() else f"images_{name}".rstrip("_")


def convert(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    test_fraction: float = 0.1,
    seed: int = 0,
    channels: int = 3,
    shard_size: int = 1024,
    name: str | None = None,
    progress: bool = True,
    read_bytes: Callable[[str], bytes] = read_image_bytes,
    workers: int = 4,
) -> pathlib.Path:
    """Convert the image folder ``src`` into the tfds ArrayRecord dataset directory ``out``.

    Args:
      src: ``<class>/<image>`` folder, or one with ``train/`` and ``test/`` such folders.
      out: the dataset directory to create; must not exist.
      test_fraction: share of every class held out for test when ``src`` has no train/test subfolders.
      seed: fixes the held-out images and the written order.
      channels: 3 (RGB) or 1 (grayscale): what readers decode the images to.
      shard_size: examples per shard (tfds aims at shards of ~100-200 MB; 1024 ImageNet JPEGs ~ 110 MB).
      name: dataset name in file names and metadata (default: from ``src``'s folder name).
      progress: report progress over the images on stderr (a tqdm bar on a terminal, plain lines in
        a log file: :mod:`snnjax.progress`).
      read_bytes: path -> the bytes to store (default: the file's bytes, checked by PIL).
      workers: threads reading and checking image files.

    Returns:
      the path ``out``.
    """
    from snnjax.progress import progress as progress_output

    out_path = pathlib.Path(out)
    if out_path.exists():
        raise DatasetError(f"--out {out_path} already exists. Fix: delete it or choose another --out.")
    if channels not in (1, 3):
        raise InvalidDatasetOptionError(f"--channels={channels} must be 1 (grayscale) or 3 (RGB).")
    plan = plan_folder(src, test_fraction=test_fraction, seed=seed)
    dataset_name = name or dataset_name_for(src)
    features = features_for(plan.class_names, channels)
    work = out_path.with_name(out_path.name + INCOMPLETE_SUFFIX)
    options = {
        "name": dataset_name,
        "channels": channels,
        "shard_size": shard_size,
        "seed": seed,
        "test_fraction": test_fraction,
    }
    _check_or_write_plan(work, _plan_digest(plan, options), out_path)

    shard_lengths: dict[str, list[int]] = {}
    jobs = []
    for split, examples in plan.splits.items():
        bounds = shard_bounds(len(examples), shard_size)
        shard_lengths[split] = [stop - start for start, stop in bounds]
        for index, (start, stop) in enumerate(bounds):
            jobs.append((work / shard_name(dataset_name, split, index, len(bounds)), examples[start:stop]))
    # A shard under its final name was renamed after closing, so it is complete; the count guards
    # against a shard of another plan that happens to share the name.
    done = {path for path, ex in jobs if path.exists() and count_records(path) == len(ex)}
    total = sum(len(ex) for _, ex in jobs)
    initial = sum(len(ex) for path, ex in jobs if path in done)
    with (
        progress_output(
            f"write_records {dataset_name}", total, initial=initial, unit="img", enabled=progress, stream=sys.stderr
        ) as bar,
        ThreadPoolExecutor(max(1, workers)) as pool,  # file reads and PIL checks release the GIL
    ):
        for path, examples in jobs:
            if path in done:
                continue
            records = []
            for example, data in zip(examples, pool.map(read_bytes, [e.path for e in examples])):
                records.append(features.serialize_example({"image": data, "label": example.label}))
                bar.update(1)
            write_shard(path, records)
    description = (
        f"Converted by snnjax.data.write_records from {os.path.abspath(src)} ({len(plan.class_names)} classes)."
    )
    write_metadata(work, dataset_name, features, shard_lengths, description)
    (work / PLAN_FILE).unlink()
    os.replace(work, out_path)  # the one step that makes the dataset visible: atomic on one filesystem
    return out_path


STATS_FILE = "snnjax_stats.json"


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG of one uint8 image [H, W, C] (C = 1 or 3)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def export_dataset(
    name: str,
    out: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    shard_size: int = 4096,
    progress: bool = True,
) -> pathlib.Path:
    """Write an in-memory dataset (``snnjax.data.load_dataset(name)``, e.g. fashion_mnist) as PNG records.

    Records keep the loader's order (record i of a split is its example i), so a
    ``data.train_subset`` picks the same examples streamed as in memory, and the train split's exact
    per-channel mean/std go to ``OUT/snnjax_stats.json`` (what the in-memory loader normalises with).
    Atomic like :func:`convert` (``OUT.incomplete`` renamed at the end); an interrupted export is
    redone whole (in-memory datasets take a minute at most).
    """
    from snnjax.data.loaders import load_dataset
    from snnjax.progress import progress as progress_output

    out_path = pathlib.Path(out)
    if out_path.exists():
        raise DatasetError(f"--out {out_path} already exists. Fix: delete it or choose another --out.")
    splits = load_dataset(name, data_dir=data_dir)
    if len(splits.image_shape) != 3 or splits.image_shape[-1] not in (1, 3):
        raise InvalidDatasetOptionError(
            f"dataset {name!r} has samples of shape {list(splits.image_shape)}; only [H, W, 1 or 3] images can be "
            "written as image records (event frames cannot)."
        )
    dataset_name = dataset_name_for(name)
    class_names = [f"class_{i}" for i in range(splits.num_classes)]
    features = features_for(class_names, splits.image_shape[-1])
    work = out_path.with_name(out_path.name + INCOMPLETE_SUFFIX)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    lengths = {}
    total = splits.train.num_examples + splits.test.num_examples
    with progress_output(f"export {name}", total, unit="img", enabled=progress, stream=sys.stderr) as bar:
        for split, data in (("train", splits.train), ("test", splits.test)):
            bounds = shard_bounds(data.num_examples, shard_size)
            lengths[split] = [stop - start for start, stop in bounds]
            for index, (start, stop) in enumerate(bounds):
                records = []
                for i in range(start, stop):
                    image = png_bytes(data.images[i])
                    records.append(features.serialize_example({"image": image, "label": int(data.labels[i])}))
                    bar.update(1)
                write_shard(work / shard_name(dataset_name, split, index, len(bounds)), records)
    write_metadata(work, dataset_name, features, lengths, f"snnjax.data.load_dataset({name!r}) as PNG records.")
    (work / STATS_FILE).write_text(json.dumps({"mean": list(splits.mean), "std": list(splits.std)}))
    os.replace(work, out_path)
    return out_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snnjax.data.write_records",
        description="Convert an image folder (<class>/<image>, or train/ and test/ such folders) into a "
        "tfds ArrayRecord dataset directory readable without TensorFlow.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--src", help="image folder: SRC/<class>/<image> or SRC/{train,test}/<class>/...")
    source.add_argument("--dataset", help="or: an in-memory snnjax dataset to export as PNG records (fashion_mnist)")
    parser.add_argument("--out", required=True, help="dataset directory to create (must not exist)")
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.1,
        help="per-class share held out for test when SRC has no train/ and test/ (default 0.1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="fixes the held-out images and the written order")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3), help="decode to RGB (3) or grayscale (1)")
    parser.add_argument("--shard-size", type=int, default=1024, help="examples per shard (default 1024)")
    parser.add_argument("--name", default=None, help="dataset name (default: from SRC's folder name)")
    parser.add_argument("--workers", type=int, default=4, help="threads reading image files (default 4)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.dataset:
            path = export_dataset(args.dataset, args.out, progress=not args.no_progress)
            print(f"wrote {path}")
            return 0
        path = convert(
            args.src,
            args.out,
            test_fraction=args.test_fraction,
            seed=args.seed,
            channels=args.channels,
            shard_size=args.shard_size,
            name=args.name,
            progress=not args.no_progress,
            workers=args.workers,
        )
    except DatasetError as e:
        print(f"write_records: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
