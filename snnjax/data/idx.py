"""MNIST and Fashion-MNIST from their official IDX files, with plain NumPy.

IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian header, then the raw bytes::

    magic  uint32  0x00000803 for images (uint8, 3 dimensions), 0x00000801 for labels (1 dimension)
    dims   uint32  x ndim    N, then H, W for images
    data   uint8   x prod(dims)

Each dataset is four files, ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``, read gzipped
(``.gz``, as published) or raw. Where the files are looked for, in order:

1. ``data_dir`` (``--config.data.data_dir``): the folder holding the four files (or its ``<name>/``).
   When given, it is the only place looked in (a mistyped or incomplete folder fails, naming it,
   rather than silently training on another copy) and the place a download goes;
2. ``$SNNJAX_DATA_DIR/<name>/``;
3. the Debian/Ubuntu package's folder (``apt-get install dataset-fashion-mnist`` installs
   ``/usr/share/datasets/fashion-mnist/``; Fashion-MNIST only);
4. the download cache ``~/.cache/snnjax/datasets/<name>/`` (or ``$SNNJAX_DATA_DIR/<name>/``),
   filled from the official source when ``download=True``: each ``.gz`` is md5-checked and renamed
   into place only when complete (:func:`snnjax.data.download.download_file`).

Local files are checked structurally (magic number, dimensions, byte count, label range, equal
image and label counts); a bad file fails naming the file and the check that failed.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import pathlib

import numpy as np

from snnjax.data.download import download_file
from snnjax.data.errors import DatasetCorruptError, DatasetNotFoundError
from snnjax.data.stats import channel_stats
from snnjax.data.types import ArrayDataset, DatasetSplits

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
IMAGE_SIZE = 28
NUM_CLASSES = 10
DATA_DIR_ENV = "SNNJAX_DATA_DIR"
DEFAULT_CACHE_DIR = pathlib.Path("~/.cache/snnjax/datasets")
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class IdxSpec:
    """Where an IDX dataset lives.

    Attributes:
      name: dataset name as registered with ``load_dataset``.
      base_url: official download folder (the ``.gz`` files are below it).
      md5: file stem -> hex md5 of the official ``.gz`` file.
      system_dir: folder a system package installs the files into ("" if none).
      install_hint: the shell command that installs that package ("" if none).
      train_size, test_size: official example counts (checked when the files are read).
    """

    name: str
    base_url: str
    md5: dict[str, str]
    system_dir: str = ""
    install_hint: str = ""
    train_size: int = 60_000
    test_size: int = 10_000


FASHION_MNIST = IdxSpec(
    name="fashion_mnist",
    base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    md5={
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    system_dir="/usr/share/datasets/fashion-mnist",
    install_hint="apt-get install dataset-fashion-mnist",
)
MNIST = IdxSpec(
    name="mnist",
    base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    md5={
        "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
    },
)
IDX_SPECS = {spec.name: spec for spec in (FASHION_MNIST, MNIST)}


# --- the file format ------------------------------------------------------------


def _read_bytes(path: pathlib.Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as err:  # gzip raises BadGzipFile (an OSError) or EOFError when truncated
        raise DatasetCorruptError(
            f"{path} cannot be read ({err}): the file is truncated or not gzip. "
            f"Fix: delete it and install or download it again."
        ) from err


def parse_idx(raw: bytes, expected_magic: int, source: str = "<bytes>") -> np.ndarray:
    """Decode one IDX file's bytes into a uint8 array of its declared shape.

    Args:
      raw: the whole (decompressed) file.
      expected_magic: IMAGES_MAGIC or LABELS_MAGIC.
      source: the file's name, for error messages.

    Returns:
      uint8 [N, H, W] for images, [N] for labels.

    Raises:
      DatasetCorruptError naming ``source`` and the check that failed (magic number, header
      length, byte count).
    """
    if len(raw) < 4:
        raise DatasetCorruptError(f"{source}: {len(raw)} bytes is too short for an IDX header (>= 4).")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise DatasetCorruptError(
            f"{source}: magic number 0x{magic:08x}, but IDX {kind} start with 0x{expected_magic:08x}: "
            f"this is not an IDX {kind} file (or the images and labels files are swapped)."
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetCorruptError(f"{source}: header declares {ndim} dimensions but the file ends at byte {len(raw)}.")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise DatasetCorruptError(
            f"{source}: header declares shape {dims} ({expected} bytes with the header) but the file has "
            f"{len(raw)} bytes: it is truncated or padded. Fix: delete it and install or download it again."
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def read_idx_pair(images_path: pathlib.Path, labels_path: pathlib.Path, num_classes: int = NUM_CLASSES) -> ArrayDataset:
    """Read one split from its images and labels files: uint8 [N, H, W, 1] and int32 [N]."""
    images = parse_idx(_read_bytes(images_path), IMAGES_MAGIC, str(images_path))
    labels = parse_idx(_read_bytes(labels_path), LABELS_MAGIC, str(labels_path))
    if images.ndim != 3:
        raise DatasetCorruptError(f"{images_path}: images must have 3 dimensions [N, H, W], got shape {images.shape}.")
    if labels.ndim != 1:
        raise DatasetCorruptError(f"{labels_path}: labels must have 1 dimension [N], got shape {labels.shape}.")
    if images.shape[0] != labels.shape[0]:
        raise DatasetCorruptError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels: "
            f"the two files are from different sets or one is incomplete."
        )
    if labels.size and int(labels.max()) >= num_classes:
        raise DatasetCorruptError(
            f"{labels_path}: label {int(labels.max())} is out of range [0, {num_classes}): not a "
            f"{num_classes}-class IDX labels file."
        )
    return ArrayDataset(np.ascontiguousarray(images[..., None]), labels.astype(np.int32), num_classes)


# --- finding (or downloading) the files -------------------------------------------


def _find_file(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _complete_folder(folder: pathlib.Path) -> dict[str, pathlib.Path] | None:
    """stem -> path when all four files are in ``folder`` (gz or raw), else None."""
    found = {stem: _find_file(folder, stem) for pair in SPLIT_FILES.values() for stem in pair}
    return None if any(p is None for p in found.values()) else found


def cache_dir(spec: IdxSpec) -> pathlib.Path:
    """Where downloads go: ``$SNNJAX_DATA_DIR/<name>`` or ``~/.cache/snnjax/datasets/<name>``."""
    return pathlib.Path(os.environ.get(DATA_DIR_ENV, DEFAULT_CACHE_DIR)).expanduser() / spec.name


def candidate_dirs(spec: IdxSpec, data_dir: str | os.PathLike[str] | None) -> list[pathlib.Path]:
    """The folders searched, in order (see the module docstring)."""
    if data_dir:  # the user's choice, and only it
        given = pathlib.Path(data_dir).expanduser()
        return [given, given / spec.name]
    dirs = [cache_dir(spec)]
    if spec.system_dir:
        dirs.append(pathlib.Path(spec.system_dir))
    return dirs


def _missing_message(spec: IdxSpec, searched: list[pathlib.Path], download_error: str, data_dir_given: bool) -> str:
    if data_dir_given:
        files = ", ".join(f"{stem}.gz" for pair in SPLIT_FILES.values() for stem in pair)
        return (
            f"--config.data.data_dir={searched[0]} does not hold the four {spec.name} files (looked in "
            f"{', '.join(str(d) for d in searched)}){download_error}. Fix: put {files} there, or correct the "
            f"path, or leave data_dir unset to use ${DATA_DIR_ENV}/{spec.name}/"
            + (f", the Debian package's {spec.system_dir}/" if spec.system_dir else "")
            + " or the download cache."
        )
    ways = []
    if spec.install_hint:
        ways.append(f"`{spec.install_hint}` (installs {spec.system_dir}/)")
    files = ", ".join(f"{stem}.gz" for pair in SPLIT_FILES.values() for stem in pair)
    ways.append(
        f"put the four official files ({files}) in a folder and pass it as --config.data.data_dir=DIR "
        f"(or set ${DATA_DIR_ENV} and put them in ${DATA_DIR_ENV}/{spec.name}/)"
    )
    ways.append(f"allow the download from {spec.base_url} (--config.data.download=True, needs network)")
    looked = ", ".join(str(d) for d in searched)
    return (
        f"Dataset {spec.name!r} not found (looked in {looked}){download_error}. Get it by one of: "
        + "; ".join(f"({i}) {w}" for i, w in enumerate(ways, 1))
        + "."
    )


def locate_idx_files(spec: IdxSpec, data_dir: str | os.PathLike[str] | None, download: bool) -> dict[str, pathlib.Path]:
    """stem -> path of the four files, downloading them into the cache if allowed and needed."""
    searched = candidate_dirs(spec, data_dir)
    for folder in searched:
        found = _complete_folder(folder)
        if found:
            return found
    download_error = " and download=False"
    if download:
        target = searched[0] if data_dir else cache_dir(spec)
        existed = target.exists()
        try:
            for stem, md5 in spec.md5.items():
                if _find_file(target, stem) is None:
                    _log.info("downloading %s%s.gz to %s", spec.base_url, stem, target)
                    download_file(f"{spec.base_url}{stem}.gz", target / f"{stem}.gz", md5)
            return _complete_folder(target)  # type: ignore[return-value]
        except OSError as err:
            download_error = f"; the download failed ({err})"
            if not existed and target.is_dir() and not any(target.iterdir()):
                target.rmdir()  # a mistyped data_dir is not left behind as an empty folder
    raise DatasetNotFoundError(_missing_message(spec, searched, download_error, data_dir_given=bool(data_dir)))


def load_idx_dataset(
    spec: IdxSpec, data_dir: str | os.PathLike[str] | None = None, download: bool = True
) -> DatasetSplits:
    """Both splits of an IDX dataset, uint8 [N, 28, 28, 1], with train-split mean/std."""
    files = locate_idx_files(spec, data_dir, download)
    splits = {split: read_idx_pair(files[images], files[labels]) for split, (images, labels) in SPLIT_FILES.items()}
    for split, size in (("train", spec.train_size), ("test", spec.test_size)):
        if splits[split].num_examples != size:
            raise DatasetCorruptError(
                f"{files[SPLIT_FILES[split][0]]}: {splits[split].num_examples} examples, but the official "
                f"{spec.name} {split} split has {size}. Fix: replace the files with the official ones."
            )
    mean, std = channel_stats(splits["train"].images)
    return DatasetSplits(spec.name, splits["train"], splits["test"], mean, std)


def load_fashion_mnist(*, data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> DatasetSplits:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 / 10,000 28x28 grayscale images, 10 classes."""
    return load_idx_dataset(FASHION_MNIST, data_dir, download)


def load_mnist(*, data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> DatasetSplits:
    """MNIST (LeCun et al. 1998): 60,000 / 10,000 28x28 grayscale handwritten digits, 10 classes."""
    return load_idx_dataset(MNIST, data_dir, download)
