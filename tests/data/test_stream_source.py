"""Streaming batches from ArrayRecord files (`snnjax.data.stream_source`, `snnjax.data.host_transforms`).

The dataset: 8x8 PNGs whose pixel (0, 0) spells the example id (channel 0: id % 256, channel 1:
id // 256) and whose class is id % 3, so every batch says exactly which records it holds.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from snnjax.data.errors import DatasetNotFoundError
from snnjax.data.host_transforms import (
    HostTransform,
    center_crop_box,
    example_rng,
    random_resized_crop_box,
)
from snnjax.data.stream_source import open_builder, open_stream
from snnjax.data.write_records import convert

CLASSES = ("c0", "c1", "c2")
PER_CLASS = 70  # 210 images; test_fraction 0.2 -> 14 per class: 168 train, 42 test
REPO = pathlib.Path(__file__).resolve().parents[2]


def ids_of(images: np.ndarray) -> np.ndarray:
    """int [B]: the example ids spelled by pixel (0, 0) of uint8 [B, H, W, C] images."""
    return images[:, 0, 0, 0].astype(np.int64) + 256 * images[:, 0, 0, 1].astype(np.int64)


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(0)
    for i in range(PER_CLASS * len(CLASSES)):
        folder = root / "src" / CLASSES[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        pixels[0, 0] = (i % 256, i // 256, 0)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return convert(root / "src", root / "records", test_fraction=0.2, shard_size=32, progress=False)


def stream(records, **kwargs):
    options = dict(batch_size=16, eval_batch_size=10, seed=0, process_index=0, process_count=1, workers=2)
    return open_stream(records, **{**options, **kwargs})


def test_metadata_and_one_epoch_of_distinct_labelled_examples(records):
    source = stream(records)
    assert (source.num_examples, source.num_test_examples) == (168, 42)
    assert source.class_names == CLASSES and source.num_classes == 3 and source.image_shape == (8, 8, 3)
    assert source.steps_per_epoch == 168 // 16
    batches = [b for _, b in zip(range(source.steps_per_epoch), source.train_batches(0))]
    ids = np.concatenate([ids_of(b["image"]) for b in batches])
    labels = np.concatenate([b["label"] for b in batches])
    assert all(b["image"].shape == (16, 8, 8, 3) and b["image"].dtype == np.uint8 for b in batches)
    assert all(b["label"].dtype == np.int32 for b in batches)
    assert len(set(ids.tolist())) == 160  # 10 full batches, 8 examples skipped this epoch
    np.testing.assert_array_equal(labels, ids % 3)
    # The order is the documented permutation of record indices.
    reader_ids = [
        int(ids_of(np.asarray(Image.open(io.BytesIO(source.train[int(r)][0])))[None])[0])
        for r in source.epoch_order(0)[:16]
    ]
    assert reader_ids == ids[:16].tolist()


def test_order_and_subset_are_those_of_the_in_memory_pipeline(records):
    """Step s reads the records `pipeline.batch_indices` picks for in-memory data (after the same stratified subset)."""
    import jax

    from snnjax.data.batches import batch_indices
    from snnjax.data.subset import stratified_subset

    source = stream(records, seed=7, train_subset=60)
    record_ids = np.array(
        [ids_of(np.asarray(Image.open(io.BytesIO(source.train[r][0])))[None])[0] for r in range(len(source.train))]
    )
    labels = np.array([source.train[r][1] for r in range(len(source.train))])
    subset = stratified_subset(labels, 60, 3)
    assert source.num_examples == 60 and source.steps_per_epoch == 3
    for step, batch in zip(range(7), source.train_batches(0)):  # across two epoch boundaries
        expected = record_ids[subset[np.asarray(batch_indices(jax.random.key(7), step, 60, 16))]]
        np.testing.assert_array_equal(ids_of(batch["image"]), expected)


def test_evaluation_counts_every_test_example_once_with_a_partial_last_batch(records):
    source = stream(records, eval_batch_size=16)  # 42 = 16 + 16 + 10 (+ 6 masked)
    batches = list(source.eval_batches())
    assert len(batches) == source.num_eval_batches == 3
    assert [int(m.sum()) for _, m in batches] == [16, 16, 10]
    ids = np.concatenate([ids_of(b["image"])[m] for b, m in batches])
    labels = np.concatenate([b["label"][m] for b, m in batches])
    assert len(ids) == 42 and len(set(ids.tolist())) == 42
    np.testing.assert_array_equal(labels, ids % 3)
    assert set(ids.tolist()).isdisjoint(
        np.concatenate([ids_of(b["image"]) for _, b in zip(range(20), source.train_batches(0))]).tolist()
    )


_WORKER = """
import json, sys
import numpy as np
from snnjax.data.stream_source import open_stream
sys.path.insert(0, {tests!r})
from test_stream_source import ids_of
index, count = int(sys.argv[1]), int(sys.argv[2])
source = open_stream({records!r}, batch_size=16, eval_batch_size=20, seed=5, process_index=index,
                     process_count=count, workers=1)
train = [ids_of(b["image"]).tolist() for _, b in zip(range(source.steps_per_epoch + 2), source.train_batches(0))]
evals = [(ids_of(b["image"]).tolist(), m.tolist()) for b, m in source.eval_batches()]
print(json.dumps({{"train": train, "eval": evals}}))
"""


def test_two_processes_read_disjoint_shards_whose_union_is_the_single_process_batch(records):
    script = _WORKER.format(records=str(records), tests=str(pathlib.Path(__file__).parent))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(i), "2"], stdout=subprocess.PIPE, env=env, text=True)
        for i in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    single = stream(records, seed=5, eval_batch_size=20)
    single_train = [ids_of(b["image"]).tolist() for _, b in zip(range(len(outs[0]["train"])), single.train_batches(0))]
    for step, (a, b) in enumerate(zip(outs[0]["train"], outs[1]["train"])):
        assert len(a) == len(b) == 8 and not set(a) & set(b)
        assert a + b == single_train[step]  # the global batch does not depend on the process count
    # Evaluation: ceil(42 / 20) = 3 global batches of 20, 10 per process; masked ids counted once overall.
    counted = [i for out in outs for ids, mask in out["eval"] for i, m in zip(ids, mask) if m]
    assert len(outs[0]["eval"]) == len(outs[1]["eval"]) == 3
    assert sorted(counted) == sorted(set(counted)) and len(counted) == 42


def test_resume_mid_epoch_yields_exactly_the_uninterrupted_batches(records):
    kwargs = dict(image_size=6, seed=2)  # random-resized crops + flips: randomness must resume too
    source = stream(records, **kwargs)
    per_epoch = source.steps_per_epoch
    full = [b for _, b in zip(range(2 * per_epoch + 3), source.train_batches(0))]
    start = per_epoch + 4  # mid epoch 1
    resumed = [b for _, b in zip(range(len(full) - start), stream(records, workers=3, **kwargs).train_batches(start))]
    for a, b in zip(full[start:], resumed, strict=True):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    assert not np.array_equal(full[0]["image"], full[per_epoch]["image"])  # epochs differ
    other_seed = next(stream(records, image_size=6, seed=3).train_batches(0))
    assert not np.array_equal(full[0]["image"], other_seed["image"])


def test_worker_processes_give_the_same_batches_as_threads(records):
    threads = next(stream(records, image_size=6).train_batches(3))
    procs = next(stream(records, image_size=6, workers=2, worker_processes=True).train_batches(3))
    np.testing.assert_array_equal(threads["image"], procs["image"])


def test_batch_sizes_must_split_evenly_across_processes(records):
    with pytest.raises(ValueError, match="batch_size=15 must be a positive multiple of the process count 2"):
        stream(records, batch_size=15, process_count=2)


def test_missing_named_dataset_says_how_to_prepare_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="tfds build imagenet2012 --file_format=array_record") as info:
        open_builder("imagenet2012", data_dir=tmp_path)
    assert "downloads/manual" in str(info.value) and str(tmp_path) in str(info.value)
    with pytest.raises(DatasetNotFoundError, match="no dataset_info.json"):
        open_builder(tmp_path)


# --- host transforms -------------------------------------------------------------------------------


def test_random_resized_crop_boxes_follow_torchvision_ranges():
    for index in range(200):  # every box lies inside the image
        left, top, w, h = random_resized_crop_box(example_rng(0, 0, index), 200, 100)
        assert 0 <= left and left + w <= 200 and 0 <= top and top + h <= 100 and w > 0 and h > 0
    # Where every first try fits (area share <= 0.5, aspect <= 4/3 on a 1000 x 1000 image), the area share
    # is uniform on [0.08, 0.5] (mean 0.29, sd 0.121) and log(w / h) uniform on +-log(4/3) (mean 0).
    boxes = [random_resized_crop_box(example_rng(0, 1, i), 1000, 1000, scale=(0.08, 0.5)) for i in range(2000)]
    areas = np.array([w * h / 1e6 for _, _, w, h in boxes])
    log_aspects = np.log([w / h for _, _, w, h in boxes])
    assert areas.min() >= 0.079 and areas.max() <= 0.501
    assert areas.mean() == pytest.approx(0.29, abs=4 * 0.121 / np.sqrt(2000))
    assert np.abs(log_aspects).max() <= np.log(4 / 3) + 0.01 and abs(log_aspects.mean()) < 0.02
    # Fallback (no box fits in 10 tries on a 1-pixel-high strip): the central box of aspect 4/3.
    assert random_resized_crop_box(example_rng(0, 0, 0), 100, 1, scale=(0.9, 1.0)) == (49, 0, 1, 1)


def test_center_crop_box_by_hand():
    # 400 x 300 image, Resize(256) scales by 256/300; CenterCrop(224) keeps 224 * 300/256 = 262.5 pixels.
    assert center_crop_box(400, 300, 224, 256) == pytest.approx((68.75, 18.75, 331.25, 281.25))


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_transforms_match_an_independent_crop_then_resize():
    rows, cols = np.mgrid[0:240, 0:320]
    pixels = np.stack([rows, cols // 2, (rows + cols) // 3], -1).astype(np.uint8)
    data = _jpeg(pixels)
    full = Image.open(io.BytesIO(data)).convert("RGB")  # decoded at full size, no DCT scaling
    # Eval: crop the box then resize (two steps, full-size decode) ~ one box resample of a draft decode.
    out = HostTransform("resize_center_crop", size=32)(data)
    left, top, right, bottom = center_crop_box(320, 240, 32, round(32 / 0.875))
    expected = np.asarray(full.resize((32, 32), Image.Resampling.BILINEAR, box=(left, top, right, bottom)))
    assert out.shape == (32, 32, 3) and np.abs(out.astype(int) - expected).mean() < 2.0
    # Train: the crop box and flip of example_rng(seed, epoch, index), checked against the same box by hand.
    transform = HostTransform("random_resized_crop", size=24)
    flips = 0
    for index in range(12):
        rng = example_rng(1, 0, index)
        left, top, w, h = random_resized_crop_box(rng, 320, 240)
        mirror = rng.random() < 0.5
        flips += mirror
        expected = np.asarray(full.resize((24, 24), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h)))
        expected = expected[:, ::-1] if mirror else expected
        got = transform(data, example_rng(1, 0, index))
        assert np.abs(got.astype(int) - expected).mean() < 2.5
    assert 0 < flips < 12
    # Grayscale output from an RGB record, and decoded arrays as input.
    gray = HostTransform("resize_center_crop", size=16, channels=1)(pixels)
    assert gray.shape == (16, 16, 1)


def test_statistics_of_a_converted_folder_are_those_of_its_train_images(records):
    from snnjax.data.stats import channel_stats
    from snnjax.data.stream_source import open_records

    opened = open_records(records)  # 168 train records < STATS_SAMPLE: all of them
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(opened.train_reader[i][0]))) for i in range(168)])
    mean, std = channel_stats(pixels)
    np.testing.assert_allclose(opened.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(opened.std, std, rtol=1e-9)
    assert opened.test.images.shape == (42, 8, 8, 3)  # the whole (small) test split as the sample
