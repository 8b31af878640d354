"""CIFAR archives: fake archives in the official format, written here, are parsed exactly."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pathlib
import pickle
import tarfile

import numpy as np
import pytest

from snnjax.data import (
    DatasetCorruptError,
    DatasetNotFoundError,
    InvalidDatasetOptionError,
    cifar,
    load_dataset,
)

RECORDS_PER_TRAIN_BATCH = 3
CIFAR10_TEST_RECORDS = 2
CIFAR100_TRAIN_RECORDS = 4
CIFAR100_TEST_RECORDS = 3


def _random_records(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _pickled(batch: dict, protocol: int) -> bytes:
    # Protocol 2 writes GLOBAL opcodes like the official Python 2 cPickle files.
    return pickle.dumps(batch, protocol=protocol)


def _write_tar(path: pathlib.Path, members: dict[str, bytes]) -> pathlib.Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def _cifar10_batches() -> dict[str, dict]:
    """Train batches 1..5 (3 records each, labels k*3+i mod 10) and a 2-record test batch."""
    batches = {}
    for k in range(1, 6):
        data = _random_records(k, RECORDS_PER_TRAIN_BATCH)
        labels = [(k * 3 + i) % 10 for i in range(RECORDS_PER_TRAIN_BATCH)]
        batches[f"data_batch_{k}"] = {b"batch_label": b"x", b"data": data, b"labels": labels}
    test = _random_records(99, CIFAR10_TEST_RECORDS)
    # Hand-set pixels of test record 0: record index = c * 1024 + h * 32 + w.
    test[0, 0 * 1024 + 2 * 32 + 5] = 200  # R at (h=2, w=5)
    test[0, 1 * 1024 + 31 * 32 + 0] = 17  # G at (h=31, w=0)
    test[0, 2 * 1024 + 0 * 32 + 31] = 3  # B at (h=0, w=31)
    batches["test_batch"] = {b"data": test, b"labels": [7, 9]}
    return batches


def _write_cifar10(path: pathlib.Path, protocol: int = 2) -> tuple[pathlib.Path, dict[str, dict]]:
    batches = _cifar10_batches()
    members = {f"cifar-10-batches-py/{k}": _pickled(v, protocol) for k, v in batches.items()}
    members["cifar-10-batches-py/batches.meta"] = _pickled({b"label_names": [b"a"] * 10}, protocol)
    members["cifar-10-batches-py/readme.html"] = b"<html></html>"
    return _write_tar(path, members), batches


def _write_cifar100(path: pathlib.Path) -> tuple[pathlib.Path, dict[str, dict]]:
    batches = {
        "train": {
            b"data": _random_records(1, CIFAR100_TRAIN_RECORDS),
            b"fine_labels": [0, 42, 99, 5],
            b"coarse_labels": [4, 1, 19, 17],
        },
        "test": {
            b"data": _random_records(2, CIFAR100_TEST_RECORDS),
            b"fine_labels": [98, 3, 60],
            b"coarse_labels": [0, 11, 2],
        },
    }
    members = {f"cifar-100-python/{k}": _pickled(v, 2) for k, v in batches.items()}
    members["cifar-100-python/meta"] = _pickled({b"fine_label_names": []}, 2)
    return _write_tar(path, members), batches


def _md5(path: pathlib.Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _trust(monkeypatch: pytest.MonkeyPatch, name: str, archive: pathlib.Path, **changes) -> cifar.CifarSpec:
    """Make the loader accept the fake archive's md5 (and any other spec change)."""
    spec = dataclasses.replace(cifar.CIFAR_SPECS[name], md5=_md5(archive), **changes)
    monkeypatch.setitem(cifar.CIFAR_SPECS, name, spec)
    return spec


def _expected_hwc(records: np.ndarray) -> np.ndarray:
    """Independent per-pixel decoding: out[n, h, w, c] = records[n, c*1024 + h*32 + w]."""
    n = records.shape[0]
    out = np.zeros((n, 32, 32, 3), np.uint8)
    for c in range(3):
        for h in range(32):
            for w in range(32):
                out[:, h, w, c] = records[:, c * 1024 + h * 32 + w]
    return out


@pytest.fixture
def cifar10_archive(tmp_path: pathlib.Path) -> tuple[pathlib.Path, dict[str, dict]]:
    return _write_cifar10(tmp_path / "cifar-10-python.tar.gz")


def test_cifar10_archive_file_parses_pixels_labels_and_sizes(cifar10_archive, monkeypatch):
    archive, batches = cifar10_archive
    _trust(monkeypatch, "cifar10", archive)
    splits = load_dataset("cifar10", data_dir=str(archive), download=False)

    assert splits.name == "cifar10"
    assert splits.train.images.shape == (15, 32, 32, 3) and splits.train.images.dtype == np.uint8
    assert splits.test.images.shape == (2, 32, 32, 3)
    assert splits.num_classes == 10 and splits.image_shape == (32, 32, 3)
    # Hand-set pixels.
    assert splits.test.images[0, 2, 5, 0] == 200
    assert splits.test.images[0, 31, 0, 1] == 17
    assert splits.test.images[0, 0, 31, 2] == 3
    # Train batches concatenated in order 1..5.
    np.testing.assert_array_equal(splits.train.labels, [(k * 3 + i) % 10 for k in range(1, 6) for i in range(3)])
    assert splits.train.labels.dtype == np.int32
    np.testing.assert_array_equal(splits.test.labels, [7, 9])
    expected = np.concatenate([_expected_hwc(batches[f"data_batch_{k}"][b"data"]) for k in range(1, 6)])
    np.testing.assert_array_equal(splits.train.images, expected)
    np.testing.assert_array_equal(splits.test.images, _expected_hwc(batches["test_batch"][b"data"]))
    assert splits.mean == (0.5071, 0.4867, 0.4408) and splits.std == (0.2675, 0.2565, 0.2761)


def test_cifar10_archive_in_directory_and_extracted_folder(cifar10_archive, monkeypatch, tmp_path):
    archive, _ = cifar10_archive
    _trust(monkeypatch, "cifar10", archive)
    from_file = load_dataset("cifar10", data_dir=archive, download=False)

    from_dir = load_dataset("cifar10", data_dir=tmp_path, download=False)  # dir holding the archive
    np.testing.assert_array_equal(from_dir.train.images, from_file.train.images)

    extracted = tmp_path / "extracted"
    with tarfile.open(archive) as tar:
        tar.extractall(extracted, filter="data")
    for data_dir in (extracted, extracted / "cifar-10-batches-py"):  # parent of the folder, or the folder
        splits = load_dataset("cifar10", data_dir=data_dir, download=False)
        np.testing.assert_array_equal(splits.train.images, from_file.train.images)
        np.testing.assert_array_equal(splits.test.labels, from_file.test.labels)


def test_cifar10_modern_pickle_protocol_also_parses(tmp_path, monkeypatch):
    archive, batches = _write_cifar10(tmp_path / "c10.tar.gz", protocol=pickle.HIGHEST_PROTOCOL)
    _trust(monkeypatch, "cifar10", archive)
    splits = load_dataset("cifar10", data_dir=archive, download=False)
    np.testing.assert_array_equal(splits.test.images, _expected_hwc(batches["test_batch"][b"data"]))


def test_cifar100_fine_and_coarse_labels(tmp_path, monkeypatch):
    archive, batches = _write_cifar100(tmp_path / "cifar-100-python.tar.gz")
    _trust(monkeypatch, "cifar100", archive)

    fine = load_dataset("cifar100", data_dir=tmp_path, download=False)
    assert fine.name == "cifar100" and fine.num_classes == 100
    assert fine.train.num_examples == 4 and fine.test.num_examples == 3
    np.testing.assert_array_equal(fine.train.labels, [0, 42, 99, 5])
    np.testing.assert_array_equal(fine.test.labels, [98, 3, 60])
    np.testing.assert_array_equal(fine.train.images, _expected_hwc(batches["train"][b"data"]))

    coarse = load_dataset("cifar100", data_dir=tmp_path, download=False, label_type="coarse")
    assert coarse.num_classes == 20
    np.testing.assert_array_equal(coarse.train.labels, [4, 1, 19, 17])
    np.testing.assert_array_equal(coarse.test.labels, [0, 11, 2])
    assert coarse.mean == (0.5071, 0.4867, 0.4408)

    with pytest.raises(InvalidDatasetOptionError, match=r"label_type='medium'.*coarse"):
        load_dataset("cifar100", data_dir=tmp_path, download=False, label_type="medium")


def test_md5_mismatch_raises_corrupt_error_naming_file_and_both_md5s(cifar10_archive):
    archive, _ = cifar10_archive
    with pytest.raises(DatasetCorruptError) as info:
        load_dataset("cifar10", data_dir=archive, download=False)
    message = str(info.value)
    assert str(archive) in message
    assert "c58f30108f718f92721af3b95e74349a" in message  # expected (official)
    assert _md5(archive) in message  # actual
    assert "delete" in message


def test_missing_archive_without_download_names_paths_and_digits(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-python.tar.gz") in message
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "digits" in message and "--config.data.data_dir" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message


def test_download_is_atomic_and_checked(tmp_path, monkeypatch):
    source, _ = _write_cifar10(tmp_path / "served.tar.gz")
    spec = _trust(monkeypatch, "cifar10", source, url=source.as_uri())  # file:// needs no network
    target = tmp_path / "cache"

    splits = load_dataset("cifar10", data_dir=target)
    assert splits.train.num_examples == 15
    assert (target / spec.archive_name).read_bytes() == source.read_bytes()
    assert sorted(os.listdir(target)) == [spec.archive_name]  # no .part left behind


def test_download_with_wrong_md5_leaves_nothing(tmp_path, monkeypatch):
    source, _ = _write_cifar10(tmp_path / "served.tar.gz")
    monkeypatch.setitem(cifar.CIFAR_SPECS, "cifar10", dataclasses.replace(cifar.CIFAR10, url=source.as_uri()))
    target = tmp_path / "cache"
    with pytest.raises(DatasetCorruptError, match=_md5(source)):
        load_dataset("cifar10", data_dir=target)
    assert os.listdir(target) == []


def test_failed_download_raises_not_found_with_url_paths_and_fixes(tmp_path, monkeypatch):
    url = (tmp_path / "does-not-exist.tar.gz").as_uri()
    monkeypatch.setitem(cifar.CIFAR_SPECS, "cifar10", dataclasses.replace(cifar.CIFAR10, url=url))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", data_dir=tmp_path / "cache")
    message = str(info.value)
    assert url in message and str(tmp_path / "cache" / "cifar-10-python.tar.gz") in message
    assert "digits" in message and "--config.data.data_dir=" in message
    assert not (tmp_path / "cache" / "cifar-10-python.tar.gz").exists()


def test_archive_missing_a_batch_is_corrupt(tmp_path, monkeypatch):
    archive = _write_tar(tmp_path / "c.tar.gz", {"cifar-10-batches-py/test_batch": b"x"})
    _trust(monkeypatch, "cifar10", archive)
    with pytest.raises(DatasetCorruptError, match="data_batch_1"):
        load_dataset("cifar10", data_dir=archive, download=False)


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_batches_may_not_reference_arbitrary_globals():
    raw = pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2)
    with pytest.raises(DatasetCorruptError, match=r"(posix|os)\.getcwd"):
        cifar.parse_batch(raw, b"labels", "evil")


def test_incomplete_extracted_folder_is_reported(cifar10_archive, tmp_path):
    archive, _ = cifar10_archive
    extracted = tmp_path / "extracted"
    with tarfile.open(archive) as tar:
        tar.extractall(extracted, filter="data")
    (extracted / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"exists but lacks \['data_batch_3'\]"):
        load_dataset("cifar10", data_dir=extracted, download=False)
