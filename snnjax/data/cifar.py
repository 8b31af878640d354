"""CIFAR-10 / CIFAR-100 from the official "python version" archives, with plain NumPy.

Why not tfds: tensorflow-datasets reads prepared datasets without TensorFlow
(`tfds.data_source`), but its stock `cifar10`/`cifar100` builders need
TensorFlow to *prepare* them. The official archives are simple (pickled dicts
of uint8 records), so reading them directly needs nothing but NumPy and the
standard library, and works offline from a file the user already has.

Archive layout (https://www.cs.toronto.edu/~kriz/cifar.html):
  cifar-10-python.tar.gz:  cifar-10-batches-py/data_batch_{1..5}, test_batch
                           {b"data": uint8 [10000, 3072], b"labels": [10000 ints]}
  cifar-100-python.tar.gz: cifar-100-python/train, test
                           {b"data": uint8 [n, 3072], b"fine_labels", b"coarse_labels"}
Each 3072-byte record is one 32x32 image stored channel-major (1024 R, then G,
then B), each plane row-major; it is transposed here to [H, W, C].

`data_dir` may be the archive itself, a directory holding the archive, or a
directory holding the extracted folder (or that folder itself). Members are
read straight out of the tar.gz; nothing is extracted or cached besides a
downloaded archive.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import logging
import os
import pathlib
import pickle
import tarfile
from collections.abc import Mapping, Sequence

import numpy as np

from snnjax.data.download import download_file, verify_md5
from snnjax.data.errors import DatasetCorruptError, DatasetNotFoundError, InvalidDatasetOptionError
from snnjax.data.types import ArrayDataset, DatasetSplits

IMAGE_SIZE = 32
CHANNELS = 3
RECORD_BYTES = CHANNELS * IMAGE_SIZE * IMAGE_SIZE  # 3072

# The official IDSNN code normalises both CIFAR-10 and CIFAR-100 with these
# (CIFAR-100 train statistics); kept for both so results are comparable.
IDSNN_MEAN = (0.5071, 0.4867, 0.4408)
IDSNN_STD = (0.2675, 0.2565, 0.2761)

_log = logging.getLogger(__name__)

DATA_DIR_ENV = "SNNJAX_DATA_DIR"
DEFAULT_DATA_DIR = pathlib.Path("~/.cache/snnjax/datasets")


@dataclasses.dataclass(frozen=True)
class CifarSpec:
    """Where a CIFAR variant lives and how its archive is laid out.

    Attributes:
      name: dataset name ("cifar10" / "cifar100").
      url: official download address of the archive.
      archive_name: file name of the archive.
      md5: hex md5 of the official archive.
      folder: top-level folder inside the archive.
      train_members, test_members: pickled batch files, concatenated in order.
      label_types: label_type -> (pickle key, number of classes).
    """

    name: str
    url: str
    archive_name: str
    md5: str
    folder: str
    train_members: tuple[str, ...]
    test_members: tuple[str, ...]
    label_types: Mapping[str, tuple[bytes, int]]

    @property
    def members(self) -> tuple[str, ...]:
        return self.train_members + self.test_members


CIFAR10 = CifarSpec(
    name="cifar10",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    archive_name="cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    folder="cifar-10-batches-py",
    train_members=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_members=("test_batch",),
    label_types={"fine": (b"labels", 10)},
)
CIFAR100 = CifarSpec(
    name="cifar100",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    archive_name="cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
    folder="cifar-100-python",
    train_members=("train",),
    test_members=("test",),
    label_types={"fine": (b"fine_labels", 100), "coarse": (b"coarse_labels", 20)},
)
CIFAR_SPECS: dict[str, CifarSpec] = {"cifar10": CIFAR10, "cifar100": CIFAR100}


def default_data_dir() -> pathlib.Path:
    """$SNNJAX_DATA_DIR if set, else ~/.cache/snnjax/datasets."""
    return pathlib.Path(os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR)).expanduser()


# --- decoding -----------------------------------------------------------------

# Only what the official (Python 2 cPickle) and NumPy-written batches reference:
# unpickling anything else from a file found on disk could run arbitrary code.
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        # NumPy 2 renamed numpy.core to numpy._core and warns on the old name.
        for candidate in (module.replace("numpy.core", "numpy._core"), module):
            try:
                return getattr(importlib.import_module(candidate), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"cannot resolve {module}.{name}")


def records_to_hwc(records: np.ndarray) -> np.ndarray:
    """uint8 [n, 3072] channel-major records -> contiguous uint8 [n, 32, 32, 3]."""
    chw = records.reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    return np.ascontiguousarray(chw.transpose(0, 2, 3, 1))


def parse_batch(raw: bytes, label_key: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pickled batch into (uint8 [n, 32, 32, 3], int32 [n]).

    Args:
      raw: the pickled batch file's bytes.
      label_key: b"labels", b"fine_labels" or b"coarse_labels".
      source: where the bytes came from, for error messages.
    """
    try:
        # encoding="bytes": the official pickles are Python 2 str -> keep them bytes.
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # pickle raises many types on garbage input
        raise DatasetCorruptError(
            f"{source} is not a readable CIFAR batch ({e}). Fix: delete it and download the official archive again."
        ) from e
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DatasetCorruptError(
            f"{source} should be a dict with keys b'data' and {label_key!r}, got {keys}. "
            "Fix: use the official 'python version' archive."
        )
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != RECORD_BYTES or labels.shape != (data.shape[0],):
        raise DatasetCorruptError(
            f"{source}: expected uint8 data [n, {RECORD_BYTES}] and n labels, got data "
            f"{data.dtype}{list(data.shape)} and {labels.shape[0]} labels. Fix: use the official archive."
        )
    return records_to_hwc(data), labels.astype(np.int32)


# --- locating and reading files -------------------------------------------------


def _has_members(folder: pathlib.Path, members: Sequence[str]) -> bool:
    return all((folder / m).is_file() for m in members)


def locate(spec: CifarSpec, data_dir: pathlib.Path) -> tuple[pathlib.Path | None, list[pathlib.Path]]:
    """Find the archive or extracted folder under `data_dir`.

    Returns:
      (found path or None, every path that was looked at, for error messages).
    """
    if data_dir.is_file():
        return data_dir, [data_dir]
    candidates = [data_dir / spec.folder, data_dir, data_dir / spec.archive_name]
    for path in candidates[:2]:
        if path.is_dir() and _has_members(path, spec.members):
            return path, candidates
    if candidates[2].is_file():
        return candidates[2], candidates
    return None, candidates


def read_archive_members(archive: pathlib.Path, folder: str, members: Sequence[str]) -> dict[str, bytes]:
    """Read `folder/<member>` files from a tar.gz in one sequential pass (no extraction)."""
    wanted = {f"{folder}/{m}": m for m in members}
    found: dict[str, bytes] = {}
    try:
        # Stream mode: gzip cannot seek backwards cheaply, so read members as they pass.
        with tarfile.open(archive, mode="r|gz") as tar:
            for info in tar:
                member = wanted.get(info.name.removeprefix("./"))
                if member is not None and info.isfile():
                    found[member] = tar.extractfile(info).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetCorruptError(
            f"{archive} is not a readable tar.gz ({e}). Fix: delete it and download it again."
        ) from e
    missing = [f"{folder}/{m}" for m in members if m not in found]
    if missing:
        raise DatasetCorruptError(
            f"{archive} lacks {missing}. Fix: pass the official archive, or delete it and download it again."
        )
    return found


def read_folder_members(folder: pathlib.Path, members: Sequence[str]) -> dict[str, bytes]:
    """Read already-extracted batch files."""
    return {m: (folder / m).read_bytes() for m in members}


def _describe(path: pathlib.Path, spec: CifarSpec) -> str:
    """A looked-at path, plus what is wrong with it if it exists."""
    if path.is_dir() and path.name == spec.folder:
        missing = [m for m in spec.members if not (path / m).is_file()]
        return f"  {path} (exists but lacks {missing})"
    return f"  {path}"


def _not_found_message(spec: CifarSpec, looked_at: Sequence[pathlib.Path], reason: str) -> str:
    paths = "\n".join(_describe(p, spec) for p in looked_at)
    return (
        f"{spec.name}: no {spec.archive_name} or extracted {spec.folder}/ found. Looked at:\n{paths}\n"
        f"{reason}\nFixes:\n"
        f"  - download the archive from {spec.url} (md5 {spec.md5}) and pass "
        f"--config.data.data_dir=/path/to/{spec.archive_name} (or data_dir=... in Python);\n"
        f"  - or use the digits preset to try offline (configs/<pipeline>.py:digits)."
    )


def _obtain(spec: CifarSpec, data_dir: pathlib.Path, download: bool) -> pathlib.Path:
    """Return the archive or extracted folder, downloading the archive if allowed."""
    found, looked_at = locate(spec, data_dir)
    if found is not None:
        return found
    if not download:
        raise DatasetNotFoundError(_not_found_message(spec, looked_at, "download=False, so nothing was downloaded."))
    # A data_dir naming an archive file means "put it exactly here".
    dest = data_dir if data_dir.name.endswith((".tar.gz", ".tgz")) else data_dir / spec.archive_name
    _log.info("Downloading %s to %s", spec.url, dest)
    try:
        return download_file(spec.url, dest, spec.md5)
    except OSError as e:
        raise DatasetNotFoundError(
            _not_found_message(spec, looked_at, f"Downloading {spec.url} to {dest} failed: {e}")
        ) from e


def load_cifar(
    spec: CifarSpec,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    label_type: str = "fine",
) -> DatasetSplits:
    """Load a CIFAR variant as uint8 [N, 32, 32, 3] splits.

    Args:
      spec: CIFAR10 or CIFAR100 (or a variant of them, e.g. in tests).
      data_dir: archive file, directory with the archive, or directory with the
        extracted folder. None means `default_data_dir()`.
      download: fetch the archive from `spec.url` if it is not found.
      label_type: "fine" (CIFAR-10's only labels; CIFAR-100's 100 classes) or
        "coarse" (CIFAR-100's 20 superclasses).

    Returns:
      DatasetSplits with IDSNN normalisation statistics.

    Raises:
      DatasetNotFoundError: nothing found and no (successful) download.
      DatasetCorruptError: wrong md5 or unreadable content.
    """
    if label_type not in spec.label_types:
        raise InvalidDatasetOptionError(
            f"{spec.name} option label_type={label_type!r} is invalid; choose one of {sorted(spec.label_types)}."
        )
    label_key, num_classes = spec.label_types[label_type]
    root = pathlib.Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    source = _obtain(spec, root, download)
    if source.is_file():
        verify_md5(source, spec.md5)
        raw = read_archive_members(source, spec.folder, spec.members)
    else:
        raw = read_folder_members(source, spec.members)

    def split(members: Sequence[str]) -> ArrayDataset:
        parts = [parse_batch(raw[m], label_key, f"{source}:{m}") for m in members]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        return ArrayDataset(images, labels, num_classes)

    return DatasetSplits(spec.name, split(spec.train_members), split(spec.test_members), IDSNN_MEAN, IDSNN_STD)


def load_cifar10(*, data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> DatasetSplits:
    """CIFAR-10: 50,000 train / 10,000 test uint8 [N, 32, 32, 3] images, 10 classes."""
    return load_cifar(CIFAR_SPECS["cifar10"], data_dir=data_dir, download=download)


def load_cifar100(
    *, data_dir: str | os.PathLike[str] | None = None, download: bool = True, label_type: str = "fine"
) -> DatasetSplits:
    """CIFAR-100: 50,000 train / 10,000 test uint8 [N, 32, 32, 3]; 100 fine or 20 coarse classes."""
    return load_cifar(CIFAR_SPECS["cifar100"], data_dir=data_dir, download=download, label_type=label_type)
