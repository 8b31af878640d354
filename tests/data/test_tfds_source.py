"""tfds datasets read without TensorFlow (`tfds.data_source`), in memory and streamed.

Two sources are used:
- `tfds.testing.mock_data`, which in tfds 4.9.10 mocks `as_data_source` with
  random records and needs no TensorFlow (mnist's metadata ships with tfds);
- a tiny real builder prepared here in array_record format. Preparing works
  without TensorFlow as long as the features need no TF encoding: `Tensor`
  and `ClassLabel` do not, `Image` (PNG encoding) does, so images are Tensors.
  This exercises the real ArrayRecord reading path that the mock replaces.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from snnjax.data import DatasetNotFoundError, InvalidDatasetOptionError, load_dataset
from snnjax.data.stream_source import open_stream

TINY = "snnjax_tiny_images"
TINY_SPLITS = {"train": 12, "test": 5}


class SnnjaxTinyImages(tfds.core.GeneratorBasedBuilder):
    """Example i: a 4x4 grayscale image filled with 10 * i, label i % 3."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(4, 4), dtype=np.uint8),  # [H, W]: no channel axis
                    "label": tfds.features.ClassLabel(num_classes=3),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(n) for split, n in TINY_SPLITS.items()}

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"image": np.full((4, 4), 10 * i, np.uint8), "label": i % 3}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> str:
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    SnnjaxTinyImages(data_dir=data_dir, file_format="array_record").download_and_prepare()
    return data_dir


def test_real_array_record_dataset_loads_into_memory(tiny_dir):
    splits = load_dataset(f"tfds:{TINY}", data_dir=tiny_dir, download=False)
    assert splits.name == f"tfds:{TINY}" and splits.num_classes == 3
    assert splits.train.images.shape == (12, 4, 4, 1) and splits.train.images.dtype == np.uint8
    assert splits.test.images.shape == (5, 4, 4, 1) and splits.test.labels.dtype == np.int32
    for split, n in ((splits.train, 12), (splits.test, 5)):
        ids = split.images[:, 0, 0, 0] // 10
        assert sorted(ids.tolist()) == list(range(n))  # every example once (tfds shuffles on write)
        np.testing.assert_array_equal(split.labels, ids % 3)
        assert (split.images == split.images[:, :1, :1, :]).all()  # constant images
    # Train statistics of pixel values 0, 10, ..., 110 on the [0, 1] scale, by hand.
    assert splits.mean == pytest.approx((55 / 255,))
    assert splits.std == pytest.approx((10 * np.sqrt((12**2 - 1) / 12) / 255,))


def test_split_and_key_options(tiny_dir):
    splits = load_dataset(f"tfds:{TINY}", data_dir=tiny_dir, download=False, train_split="test", test_split="train[:4]")
    assert splits.train.num_examples == 5 and splits.test.num_examples == 4
    with pytest.raises(InvalidDatasetOptionError, match=r"'validation'.*\['test', 'train'\]"):
        load_dataset(f"tfds:{TINY}", data_dir=tiny_dir, download=False, test_split="validation")
    with pytest.raises(InvalidDatasetOptionError, match=r"'img'.*\['image', 'label'\]"):
        load_dataset(f"tfds:{TINY}", data_dir=tiny_dir, download=False, image_key="img")
    with pytest.raises(InvalidDatasetOptionError, match="has no option"):
        load_dataset(f"tfds:{TINY}", data_dir=tiny_dir, download=False, shuffle=True)


def test_streaming_over_real_source(tiny_dir):
    """The streamed reader serves any tfds array_record dataset by name (here a Tensor image feature)."""
    source = open_stream(
        TINY, data_dir=tiny_dir, batch_size=4, eval_batch_size=4, seed=0, channels=1, process_index=0, process_count=1
    )
    assert (source.num_examples, source.num_test_examples, source.image_shape) == (12, 5, (4, 4, 1))
    batches = [b for _, b in zip(range(3), source.train_batches(0))]
    assert all(b["image"].shape == (4, 4, 4, 1) and b["image"].dtype == np.uint8 for b in batches)
    assert all(b["label"].dtype == np.int32 for b in batches)
    ids = np.concatenate([b["image"][:, 0, 0, 0] // 10 for b in batches])
    assert sorted(ids.tolist()) == list(range(12))
    np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches]), ids % 3)
    evals = list(source.eval_batches())  # 5 test records: 4 + 1 (3 masked)
    assert [int(m.sum()) for _, m in evals] == [4, 1]
    test_ids = np.concatenate([b["image"][m, 0, 0, 0] // 10 for b, m in evals])
    assert sorted(test_ids.tolist()) == list(range(5))


def test_mock_data_source_matches_direct_reads(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        splits = load_dataset("tfds:mnist", data_dir=str(tmp_path))
        direct = tfds.data_source("mnist", split="test")
        expected_images = np.stack([direct[i]["image"] for i in range(6)])
        expected_labels = np.array([direct[i]["label"] for i in range(6)])
    assert splits.train.images.shape == (6, 28, 28, 1) and splits.num_classes == 10
    np.testing.assert_array_equal(splits.test.images, expected_images)
    np.testing.assert_array_equal(splits.test.labels, expected_labels)


def test_missing_dataset_names_name_dir_and_how_to_prepare(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("tfds:mnist", data_dir=str(tmp_path), download=False)
    message = str(info.value)
    assert "'mnist'" in message and str(tmp_path) in message
    assert "tfds build mnist --file_format=array_record" in message and "digits" in message


def test_unregistered_name(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no dataset named 'no_such_dataset_xyz'"):
        load_dataset("tfds:no_such_dataset_xyz", data_dir=str(tmp_path), download=False)
