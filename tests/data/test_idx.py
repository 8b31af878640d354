"""IDX reader (MNIST / Fashion-MNIST): format checks on files the tests write, lookup order, errors,
and the real Debian files when `apt-get install dataset-fashion-mnist` has put them there."""

from __future__ import annotations

import dataclasses
import gzip
import pathlib

import numpy as np
import pytest

from snnjax import data
from snnjax.data import idx

DEBIAN_DIR = pathlib.Path(idx.FASHION_MNIST.system_dir)


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def _write(folder: pathlib.Path, stem: str, raw: bytes, gz: bool) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{stem}.gz" if gz else stem)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


def _write_dataset(folder: pathlib.Path, n_train: int = 20, n_test: int = 10, gz: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        img_stem, lab_stem = idx.SPLIT_FILES[split]
        _write(folder, img_stem, _idx_bytes(images, idx.IMAGES_MAGIC), gz)
        _write(folder, lab_stem, _idx_bytes(labels, idx.LABELS_MAGIC), gz)
        arrays[split] = (images, labels)
    return arrays


def _spec(n_train: int = 20, n_test: int = 10, **kw) -> idx.IdxSpec:
    return dataclasses.replace(idx.FASHION_MNIST, system_dir="", train_size=n_train, test_size=n_test, **kw)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(idx.DATA_DIR_ENV, str(tmp_path / "cache"))


def test_parse_idx_by_hand():
    raw = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    out = idx.parse_idx(raw, idx.IMAGES_MAGIC)
    np.testing.assert_array_equal(out, [[[1, 2, 3]], [[4, 5, 6]]])
    labels = idx.parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9]), idx.LABELS_MAGIC)
    np.testing.assert_array_equal(labels, [7, 0, 9])


@pytest.mark.parametrize("gz", [True, False])
def test_gz_and_raw_files_load_exactly(tmp_path, gz):
    arrays = _write_dataset(tmp_path / "f", gz=gz)
    splits = idx.load_idx_dataset(_spec(), data_dir=tmp_path / "f", download=False)
    assert splits.train.images.shape == (20, 28, 28, 1) and splits.train.images.dtype == np.uint8
    np.testing.assert_array_equal(splits.train.images[..., 0], arrays["train"][0])
    np.testing.assert_array_equal(splits.test.labels, arrays["test"][1].astype(np.int32))
    assert splits.train.labels.dtype == np.int32 and splits.num_classes == 10
    expected_mean = arrays["train"][0].astype(np.float64).mean() / 255
    assert splits.mean[0] == pytest.approx(expected_mean, rel=1e-12)


def test_lookup_order_data_dir_then_env_folder_then_system_folder(tmp_path, monkeypatch):
    given, system = tmp_path / "given", tmp_path / "system"
    _write_dataset(given, seed=1)
    _write_dataset(tmp_path / "cache" / "fashion_mnist", seed=2)
    _write_dataset(system, seed=3)
    spec = dataclasses.replace(_spec(), system_dir=str(system))
    pick = lambda **kw: idx.load_idx_dataset(spec, download=False, **kw).train.images  # noqa: E731
    first = lambda seed: np.random.default_rng(seed).integers(0, 256, (20, 28, 28), dtype=np.uint8)  # noqa: E731
    np.testing.assert_array_equal(pick(data_dir=given)[..., 0], first(1))
    np.testing.assert_array_equal(pick()[..., 0], first(2))  # $SNNJAX_DATA_DIR/<name>
    monkeypatch.setenv(idx.DATA_DIR_ENV, str(tmp_path / "empty"))
    np.testing.assert_array_equal(pick()[..., 0], first(3))  # the Debian package's folder


def test_missing_dataset_names_the_apt_command_first_and_every_other_way(tmp_path):
    spec = dataclasses.replace(_spec(), system_dir=str(tmp_path / "nothing"))
    with pytest.raises(data.DatasetNotFoundError) as err:
        idx.load_idx_dataset(spec, download=False)
    msg = str(err.value)
    assert msg.index("apt-get install dataset-fashion-mnist") < msg.index("--config.data.data_dir")
    assert "download" in msg and str(tmp_path / "nothing") in msg and "train-images-idx3-ubyte.gz" in msg


def test_a_given_data_dir_is_the_only_place_looked_in(tmp_path):
    """A mistyped --config.data.data_dir fails naming it, although the Debian folder has the data."""
    system = tmp_path / "system"
    _write_dataset(system)
    spec = dataclasses.replace(_spec(), system_dir=str(system))
    assert idx.load_idx_dataset(spec, download=False).train.num_examples == 20  # found there when unset
    with pytest.raises(data.DatasetNotFoundError) as err:
        idx.load_idx_dataset(spec, data_dir=tmp_path / "typo", download=False)
    msg = str(err.value)
    assert msg.startswith(f"--config.data.data_dir={tmp_path / 'typo'} does not hold the four fashion_mnist files")
    assert f"{tmp_path / 'typo' / 'fashion_mnist'}" in msg and "Fix: put train-images-idx3-ubyte.gz" in msg
    assert f"the Debian package's {system}/" in msg
    _write_dataset(tmp_path / "mine" / "fashion_mnist", seed=5)  # <data_dir>/<name>/ is looked in too
    mine = idx.load_idx_dataset(spec, data_dir=tmp_path / "mine", download=False).train.images[..., 0]
    np.testing.assert_array_equal(mine, np.random.default_rng(5).integers(0, 256, (20, 28, 28), dtype=np.uint8))


def test_failed_download_leaves_nothing_and_is_named(tmp_path, monkeypatch):
    def refuse(url, dest, md5):  # as download_file: the folder is made before the network fails
        pathlib.Path(dest).parent.mkdir(parents=True, exist_ok=True)
        raise OSError(f"no network for {url}")

    monkeypatch.setattr(idx, "download_file", refuse)
    with pytest.raises(data.DatasetNotFoundError, match="download failed .*no network"):
        idx.load_idx_dataset(_spec(), download=True)
    assert not any((tmp_path / "cache").rglob("*.gz"))
    with pytest.raises(data.DatasetNotFoundError, match="download failed .*no network"):
        idx.load_idx_dataset(_spec(), data_dir=tmp_path / "typo", download=True)
    assert not (tmp_path / "typo").exists()


def test_download_fetches_each_missing_file_into_the_cache(tmp_path, monkeypatch):
    source = tmp_path / "server"
    _write_dataset(source)
    fetched = []

    def fake_download(url, dest, md5):
        fetched.append((url.rsplit("/", 1)[1], md5))
        pathlib.Path(dest).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(dest).write_bytes((source / pathlib.Path(dest).name).read_bytes())

    monkeypatch.setattr(idx, "download_file", fake_download)
    splits = idx.load_idx_dataset(_spec(), download=True)
    assert splits.train.num_examples == 20
    assert sorted(fetched) == sorted((f"{stem}.gz", md5) for stem, md5 in idx.FASHION_MNIST.md5.items())
    assert len(list((tmp_path / "cache" / "fashion_mnist").glob("*.gz"))) == 4
    # With data_dir given, the download goes there (the only place looked in), not into the cache.
    fetched.clear()
    assert idx.load_idx_dataset(_spec(), data_dir=tmp_path / "given", download=True).train.num_examples == 20
    assert len(fetched) == 4 and len(list((tmp_path / "given").glob("*.gz"))) == 4


def _corrupt(tmp_path, stem, raw, gz=True):
    folder = tmp_path / "bad"
    _write_dataset(folder, gz=gz)
    for p in folder.glob(f"{stem}*"):
        p.unlink()
    return _write(folder, stem, raw, gz)


def test_bad_magic_is_named(tmp_path):
    labels = _idx_bytes(np.zeros(20, np.uint8), idx.LABELS_MAGIC)
    path = _corrupt(tmp_path, "train-images-idx3-ubyte", labels)  # a labels file where images belong
    with pytest.raises(data.DatasetCorruptError, match=r"magic number 0x00000801.*0x00000803") as err:
        idx.load_idx_dataset(_spec(), data_dir=tmp_path / "bad", download=False)
    assert str(path) in str(err.value)


def test_truncated_payload_and_truncated_gzip_are_named(tmp_path):
    full = _idx_bytes(np.zeros((20, 28, 28), np.uint8), idx.IMAGES_MAGIC)
    path = _corrupt(tmp_path, "train-images-idx3-ubyte", full[:-5])
    with pytest.raises(data.DatasetCorruptError, match=r"shape \(20, 28, 28\).*truncated") as err:
        idx.load_idx_dataset(_spec(), data_dir=tmp_path / "bad", download=False)
    assert str(path) in str(err.value)
    path.write_bytes(path.read_bytes()[:40])  # a cut-off .gz
    with pytest.raises(data.DatasetCorruptError, match="cannot be read"):
        idx.load_idx_dataset(_spec(), data_dir=tmp_path / "bad", download=False)


def test_count_mismatch_and_label_range_are_named(tmp_path):
    _corrupt(tmp_path, "t10k-labels-idx1-ubyte", _idx_bytes(np.zeros(9, np.uint8), idx.LABELS_MAGIC))
    with pytest.raises(data.DatasetCorruptError, match="10 images but .* 9 labels"):
        idx.load_idx_dataset(_spec(), data_dir=tmp_path / "bad", download=False)
    _corrupt(tmp_path, "t10k-labels-idx1-ubyte", _idx_bytes(np.full(10, 10, np.uint8), idx.LABELS_MAGIC))
    with pytest.raises(data.DatasetCorruptError, match=r"label 10 is out of range \[0, 10\)"):
        idx.load_idx_dataset(_spec(), data_dir=tmp_path / "bad", download=False)


def test_wrong_official_size_is_named(tmp_path):
    _write_dataset(tmp_path / "f", n_train=20)
    with pytest.raises(
        data.DatasetCorruptError, match="20 examples, but the official fashion_mnist train split has 60000"
    ):
        idx.load_idx_dataset(dataclasses.replace(_spec(), train_size=60_000), data_dir=tmp_path / "f", download=False)


def test_registered_names():
    assert {"fashion_mnist", "mnist", "fashion_mnist_events"} <= set(data.dataset_names())


@pytest.mark.skipif(
    not (DEBIAN_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed: apt-get install dataset-fashion-mnist",
)
def test_real_fashion_mnist_from_the_debian_package(monkeypatch, tmp_path):
    splits = data.load_dataset("fashion_mnist", download=False)
    assert splits.train.images.shape == (60_000, 28, 28, 1) and splits.test.images.shape == (10_000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(splits.train.labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(splits.test.labels), [1000] * 10)
    # Published training-set statistics of Fashion-MNIST: mean 0.2860, std 0.3530.
    assert splits.mean[0] == pytest.approx(0.2860, abs=5e-4) and splits.std[0] == pytest.approx(0.3530, abs=5e-4)


def test_fashion_mnist_events_are_the_converted_static_splits(tmp_path, monkeypatch):
    from snnjax.data import events

    arrays = _write_dataset(tmp_path / "f")
    small = idx.load_idx_dataset(_spec(), data_dir=tmp_path / "f", download=False)
    seen = {}

    def fake_loader(*, data_dir, download):
        seen.update(data_dir=data_dir, download=download)
        return small

    monkeypatch.setattr(idx, "load_fashion_mnist", fake_loader)
    got = data.load_dataset("fashion_mnist_events", data_dir=str(tmp_path / "f"), download=False, time_steps=3)
    want = events.convert_splits(small, "fashion_mnist_events", time_steps=3, threshold=events.DEFAULT_THRESHOLD)
    assert got.name == "fashion_mnist_events" and got.train.images.shape == (20, 3, 28, 28, 2)
    np.testing.assert_array_equal(got.train.images, want.train.images)
    np.testing.assert_array_equal(got.test.labels, arrays["test"][1].astype(np.int32))
    assert seen == {"data_dir": str(tmp_path / "f"), "download": False}
    with pytest.raises(data.InvalidDatasetOptionError, match="fashion_mnist_events option time_steps=0"):
        data.load_dataset("fashion_mnist_events", data_dir=str(tmp_path / "f"), download=False, time_steps=0)
