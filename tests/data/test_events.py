"""Event data: the static -> event converter, binning of tonic-style streams, the folder reader,
the registered event datasets and the on-device pipeline on [B, T, H, W, 2] frames."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.data import (
    DatasetCorruptError,
    DatasetNotFoundError,
    DatasetSplits,
    InvalidDatasetOptionError,
    dataset_names,
    event_io,
    load_dataset,
    make_eval_batch,
    make_train_batch,
    normalize,
)
from snnjax.data import events as ev
from snnjax.data.batches import AugmentParams, crop_flip, random_crop_flip
from snnjax.data.types import ArrayDataset


def image(size, pixels):
    """uint8 [size, size, 1] black image with ``{(row, col): value}`` set."""
    img = np.zeros((size, size, 1), np.uint8)
    for (r, c), v in pixels.items():
        img[r, c, 0] = v
    return img


def events_at(frames, channel):
    """Per frame, the sorted (row, col) list of events of ``channel``."""
    return [sorted(map(tuple, np.argwhere(f[..., channel]).tolist())) for f in frames]


# ---------------------------------------------------------------------------------------------- converter


def test_single_bright_pixel_gives_one_on_and_one_off_event_per_frame():
    # Default path positions p0..p3 = (0,-1), (-1,1), (1,0), (0,-1): the 200-pixel at (2, 2) sits at
    # (2,1) -> (1,3) -> (3,2) -> (2,1). The 40-pixel never exceeds the threshold 46.
    frames = ev.moving_window_events(image(6, {(2, 2): 200, (4, 4): 40}), time_steps=3)
    assert frames.shape == (3, 6, 6, 2) and frames.dtype == np.uint8
    assert events_at(frames, ev.ON) == [[(1, 3)], [(3, 2)], [(2, 1)]]
    assert events_at(frames, ev.OFF) == [[(2, 1)], [(1, 3)], [(3, 2)]]
    assert frames[..., ev.ON].sum() == 3 and frames[..., ev.OFF].sum() == 3


def test_moving_block_events_at_leading_and_trailing_edges_only():
    block = image(5, {(r, c): 100 for r in (1, 2) for c in (1, 2)})
    frames = ev.moving_window_events(block, time_steps=1, path=[(0, 0), (0, 1)])  # one pixel right
    assert events_at(frames, ev.ON) == [[(1, 3), (2, 3)]]  # new right column
    assert events_at(frames, ev.OFF) == [[(1, 1), (2, 1)]]  # vacated left column; column 2 unchanged


@pytest.mark.parametrize("value,expected", [(46, 0), (47, 2)])
def test_threshold_is_strict(value, expected):
    frames = ev.moving_window_events(image(4, {(1, 1): value}), time_steps=1, threshold=46, path=[(0, 0), (1, 0)])
    assert frames.sum() == expected


def test_content_leaving_the_frame_makes_only_the_off_event():
    frames = ev.moving_window_events(image(3, {(0, 0): 255}), time_steps=1, path=[(0, 0), (0, -1)])
    assert frames[..., ev.OFF].sum() == 1 and frames[0, 0, 0, ev.OFF] == 1 and frames[..., ev.ON].sum() == 0


def test_path_repeats_for_long_sequences():
    frames = ev.moving_window_events(image(7, {(3, 3): 255, (2, 4): 120}), time_steps=11)
    period = len(ev.ES_IMAGENET_PATH)
    np.testing.assert_array_equal(frames[period], frames[0])
    np.testing.assert_array_equal(frames[period + 1], frames[1])


def reference_events(img, time_steps, threshold, path):
    """Per-pixel loop implementation of the documented rule (independent of the vectorised one)."""
    gray = img.max(axis=-1).astype(int)
    h, w = gray.shape
    pos = [path[k % len(path)] for k in range(time_steps + 1)]

    def value(k, r, c):
        dy, dx = pos[k]
        rr, cc = r - dy, c - dx
        return gray[rr, cc] if 0 <= rr < h and 0 <= cc < w else 0

    out = np.zeros((time_steps, h, w, 2), np.uint8)
    for k in range(time_steps):
        for r in range(h):
            for c in range(w):
                d = value(k + 1, r, c) - value(k, r, c)
                out[k, r, c, 1] = d > threshold
                out[k, r, c, 0] = d < -threshold
    return out


def test_vectorised_converter_matches_the_per_pixel_rule_on_random_rgb_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 6, 5, 3), dtype=np.uint8)
    frames = ev.moving_window_events(images, time_steps=4, threshold=60)
    assert frames.shape == (3, 4, 6, 5, 2) and frames.dtype == np.uint8
    for img, got in zip(images, frames):
        np.testing.assert_array_equal(got, reference_events(img, 4, 60, ev.ES_IMAGENET_PATH))


def test_converter_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        ev.moving_window_events(np.zeros((1, 4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="threshold"):
        ev.moving_window_events(np.zeros((1, 4, 4, 1), np.uint8), threshold=300)
    with pytest.raises(ValueError, match="at least 2 positions"):
        ev.moving_window_events(np.zeros((1, 4, 4, 1), np.uint8), path=[(0, 0)])


# ---------------------------------------------------------------------------------------------- binning


def stream(rows, dtype=ev.EVENT_DTYPE):
    return np.array(rows, dtype=dtype)


HAND = [(0, 0, 0, 1), (0, 0, 24, 1), (1, 2, 25, 0), (3, 1, 50, 1), (3, 1, 74, 1), (3, 1, 74, 1), (2, 2, 99, 0)]


def test_binning_over_the_sample_span_against_a_hand_count():
    # t0 = 0, d = 99, T = 4: bin = floor(4 t / 99) -> 0, 0, 1, 2, 2, 2, 3 (t = 99 closes the last bin).
    frames = ev.bin_events(stream(HAND[::-1]), sensor_size=(4, 3), time_steps=4)  # order does not matter
    assert frames.shape == (4, 3, 4, 2) and frames.dtype == np.uint8
    expected = np.zeros((4, 3, 4, 2), np.uint8)
    expected[0, 0, 0, ev.ON] = 2
    expected[1, 2, 1, ev.OFF] = 1
    expected[2, 1, 3, ev.ON] = 3
    expected[3, 2, 2, ev.OFF] = 1
    np.testing.assert_array_equal(frames, expected)
    np.testing.assert_array_equal(
        ev.bin_events(stream(HAND), sensor_size=(4, 3), time_steps=4, binary=True), np.minimum(expected, 1)
    )


def test_binning_with_an_explicit_window_drops_events_outside_it():
    # t0 = 0, d = 50: bin = floor(4 t / 50) -> 0, 1, 2, 3 (t = 50 is the closed end); t = 74, 99 dropped.
    frames = ev.bin_events(stream(HAND), sensor_size=(4, 3), time_steps=4, t_start=0, duration=50)
    assert frames.sum() == 4
    assert frames[0, 0, 0, ev.ON] == 1 and frames[1, 0, 0, ev.ON] == 1
    assert frames[2, 2, 1, ev.OFF] == 1 and frames[3, 1, 3, ev.ON] == 1


def test_signed_polarity_float_times_and_empty_streams():
    signed = np.array([(1, 0, 0.5, -1), (1, 0, 1.5, 1)], dtype=[("x", "i2"), ("y", "i2"), ("t", "f8"), ("p", "i1")])
    frames = ev.bin_events(signed, sensor_size=(2, 1), time_steps=2)
    assert frames[0, 0, 1, ev.OFF] == 1 and frames[1, 0, 1, ev.ON] == 1 and frames.sum() == 2
    empty = ev.bin_events(stream([]), sensor_size=(2, 2), time_steps=3)
    assert empty.shape == (3, 2, 2, 2) and empty.sum() == 0


def test_counts_saturate_at_255():
    frames = ev.bin_events(stream([(0, 0, 0, 1)] * 300), sensor_size=(1, 1), time_steps=1)
    assert frames[0, 0, 0, ev.ON] == 255


def test_binning_rejects_bad_streams():
    with pytest.raises(ValueError, match=r"sensor_size.*\(4, 3\)"):
        ev.bin_events(stream([(4, 0, 0, 1)]), sensor_size=(4, 3), time_steps=2)
    with pytest.raises(ValueError, match="missing.*'p'"):
        ev.bin_events(np.zeros(2, [("x", int), ("y", int), ("t", int)]), sensor_size=(4, 3), time_steps=2)


def test_frames_to_events_round_trips_through_binning():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 4, size=(5, 3, 4, 2)).astype(np.uint8)
    stream_ = ev.frames_to_events(frames, dt=10)
    assert stream_.dtype.names == ev.EVENT_FIELDS and len(stream_) == frames.sum()
    assert np.all(np.diff(stream_["t"]) >= 0)
    back = ev.bin_events(stream_, sensor_size=(4, 3), time_steps=5, t_start=0, duration=50)
    np.testing.assert_array_equal(back, frames)


# ---------------------------------------------------------------------------------------------- datasets


def test_digits_events_dataset_shapes_dtype_and_passthrough_stats():
    assert {"digits_events", "cifar10_events", "event_folder"} <= set(dataset_names())
    splits = load_dataset("digits_events", time_steps=3)
    digits = load_dataset("digits")
    assert splits.train.images.shape == (1437, 3, 8, 8, 2) and splits.test.images.shape == (360, 3, 8, 8, 2)
    assert splits.train.images.dtype == np.uint8 and splits.image_shape == (3, 8, 8, 2)
    np.testing.assert_array_equal(splits.train.labels, digits.train.labels)
    np.testing.assert_array_equal(splits.test.images[:5], ev.moving_window_events(digits.test.images[:5], time_steps=3))
    assert splits.mean == (0.0, 0.0) and splits.std == (1 / 255, 1 / 255)
    assert set(np.unique(splits.train.images)) == {0, 1} and splits.train.images.mean() > 0.05
    with pytest.raises(InvalidDatasetOptionError, match="time_steps"):
        load_dataset("digits_events", time_steps=0)


def test_normalisation_with_passthrough_stats_returns_the_counts():
    counts = jnp.arange(256, dtype=jnp.uint8).reshape(1, 1, 128, 2)
    mean, std = ev.passthrough_stats()
    out = np.asarray(normalize(counts, mean, std))
    np.testing.assert_allclose(out, np.asarray(counts, np.float32), rtol=1e-6)
    np.testing.assert_array_equal(out[..., :1, :], [[[[0.0, 1.0]]]])  # 0/1 frames pass exactly


def write_hand_folder(root):
    samples = [stream(HAND), stream([(1, 1, 5, 0)]), stream([(0, 2, 0, 1), (3, 0, 9, 0)])]
    event_io.write_meta(root, sensor_size=(4, 3), num_classes=3)
    event_io.write_event_split(root, "train", samples, np.array([2, 0, 1]))
    event_io.write_event_split(root, "test", samples[:2], np.array([1, 1]))
    return samples


def test_event_folder_reader_bins_every_sample(tmp_path):
    samples = write_hand_folder(tmp_path)
    splits = load_dataset("event_folder", data_dir=str(tmp_path), time_steps=4)
    assert splits.name == "event_folder" and splits.num_classes == 3
    assert splits.train.images.shape == (3, 4, 3, 4, 2) and splits.train.images.dtype == np.uint8
    assert splits.train.labels.tolist() == [2, 0, 1] and splits.test.labels.tolist() == [1, 1]
    assert splits.train.images[0, 2, 1, 3, ev.ON] == 3  # the hand count above
    assert splits.train.images[1, 0, 1, 1, ev.OFF] == 1  # single event -> bin 0
    for got, sample in zip(splits.train.images, samples):
        np.testing.assert_array_equal(got, ev.bin_events(sample, sensor_size=(4, 3), time_steps=4))
    binary = load_dataset("event_folder", data_dir=str(tmp_path), time_steps=4, binary=True)
    assert binary.train.images.max() == 1


def test_event_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(InvalidDatasetOptionError, match="data_dir"):
        load_dataset("event_folder")
    with pytest.raises(DatasetNotFoundError, match="meta.json"):
        load_dataset("event_folder", data_dir=str(tmp_path))
    write_hand_folder(tmp_path)
    (tmp_path / "train" / "1.npy").unlink()
    with pytest.raises(DatasetCorruptError, match=r"missing indices \[1\]"):
        load_dataset("event_folder", data_dir=str(tmp_path))


def test_exported_converted_dataset_reads_back_identically(tmp_path):
    full = load_dataset("digits_events", time_steps=4)
    small = DatasetSplits(
        "digits_events",
        ArrayDataset(full.train.images[:12], full.train.labels[:12], 10),
        ArrayDataset(full.test.images[:6], full.test.labels[:6], 10),
        full.mean,
        full.std,
    )
    event_io.export_frames(tmp_path, small, dt=1000)
    back = load_dataset("event_folder", data_dir=str(tmp_path), time_steps=4)
    np.testing.assert_array_equal(back.train.images, small.train.images)
    np.testing.assert_array_equal(back.test.images, small.test.images)
    np.testing.assert_array_equal(back.test.labels, small.test.labels)


# ---------------------------------------------------------------------------------------------- on-device pipeline


def test_event_crop_and_flip_are_identical_across_time():
    rng = np.random.default_rng(2)
    frames = jnp.asarray(rng.integers(1, 5, size=(4, 3, 5, 6, 2)), jnp.uint8)
    params = AugmentParams(
        jnp.array([[0, 0], [2, 1], [1, 2], [2, 2]], jnp.int32), jnp.array([False, True, True, False])
    )
    out = np.asarray(crop_flip(frames, params, padding=1))
    assert out.shape == frames.shape and out.dtype == np.uint8
    for t in range(3):
        np.testing.assert_array_equal(out[:, t], np.asarray(crop_flip(frames[:, t], params, padding=1)))
    # Example 1: offset (2, 1) in the 1-padded frame = shift up one row, then mirror.
    np.testing.assert_array_equal(out[1, :, :4], np.asarray(frames)[1, :, 1:, ::-1])
    np.testing.assert_array_equal(out[1, :, 4], 0)
    shaped = random_crop_flip(jax.random.key(0), frames, padding=2, flip=True)
    assert shaped.shape == frames.shape


def test_train_and_eval_batches_of_event_frames():
    rng = np.random.default_rng(3)
    frames = jnp.asarray(rng.integers(0, 3, size=(10, 4, 5, 5, 2)), jnp.uint8)
    labels = jnp.arange(10, dtype=jnp.int32)
    mean, std = ev.passthrough_stats()
    x, y = make_train_batch(
        jax.random.key(1),
        frames,
        labels,
        3,
        batch_size=4,
        mean=mean,
        std=std,
        padding=0,
        flip=False,
        data_key=jax.random.key(2),
    )
    assert x.shape == (4, 4, 5, 5, 2) and x.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(x), np.asarray(frames)[np.asarray(y)], rtol=1e-6)
    xe, ye, mask = make_eval_batch(frames, labels, 2, batch_size=4, mean=mean, std=std)
    assert xe.shape == (4, 4, 5, 5, 2) and mask.tolist() == [True, True, False, False]
    np.testing.assert_allclose(np.asarray(xe[:2]), np.asarray(frames[8:10]), rtol=1e-6)
