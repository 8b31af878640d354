"""Image folder -> ArrayRecord conversion (`snnjax.data.write_records`), read back without TensorFlow."""

from __future__ import annotations

import io
import pathlib
import re

import numpy as np
import pytest
from PIL import Image

from snnjax.data.errors import DatasetCorruptError, DatasetNotFoundError, InvalidDatasetOptionError
from snnjax.data.stream_source import RecordReader, open_builder
from snnjax.data.write_records import convert, main, plan_folder

CLASSES = ("ant", "bee", "cow")  # sorted: ids 0, 1, 2


def smooth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3]: a random colour ramp (smooth, so JPEG round-trips to within a few levels)."""
    base = rng.integers(40, 200, 3)
    slope = rng.integers(-3, 4, (2, 3))
    rows, cols = np.arange(height)[:, None, None], np.arange(width)[None, :, None]
    return np.clip(base + slope[0] * rows + slope[1] * cols, 0, 255).astype(np.uint8)


def write_folder(root: pathlib.Path, per_class: int, fmt: str, seed: int) -> dict[str, tuple[str, np.ndarray]]:
    """root/<class>/<i>.<fmt> images of varying size; returns {path: (class, pixels)}."""
    rng = np.random.default_rng(seed)
    written = {}
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = smooth_image(rng, 12 + i % 5, 14 + i % 3)
            path = root / name / f"{i:03d}.{fmt}"
            Image.fromarray(pixels).save(path, quality=95) if fmt == "jpg" else Image.fromarray(pixels).save(path)
            written[str(path)] = (name, pixels)
    return written


def read_split(directory: pathlib.Path, split: str) -> list[tuple[bytes, int]]:
    reader = RecordReader(open_builder(directory), split)
    return [reader[i] for i in range(len(reader))]


def test_train_test_subfolders_round_trip_exactly(tmp_path):
    """PNG: stored bytes are the files' bytes, decode to the original pixels exactly, labels by class name."""
    written = {}
    for split, n in (("train", 8), ("test", 3)):
        written.update(write_folder(tmp_path / "src" / split, n, "png", seed=len(split)))
    out = convert(tmp_path / "src", tmp_path / "out", shard_size=5, progress=False)
    builder = open_builder(out)
    assert builder.info.features["label"].names == list(CLASSES)
    assert builder.info.splits["train"].num_examples == 24
    assert builder.info.splits["train"].shard_lengths == [5, 5, 5, 5, 4]
    by_bytes = {pathlib.Path(p).read_bytes(): (p, c, x) for p, (c, x) in written.items()}
    for split, n in (("train", 24), ("test", 9)):
        records = read_split(out, split)
        assert len(records) == n
        seen = set()
        for data, label in records:
            path, name, pixels = by_bytes[data]
            assert f"/{split}/" in path and label == CLASSES.index(name)
            np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
            seen.add(path)
        assert len(seen) == n  # every image exactly once


def test_test_fraction_split_is_stratified_and_jpeg_decodes_within_tolerance(tmp_path):
    written = write_folder(tmp_path / "src", 20, "jpg", seed=0)
    out = convert(tmp_path / "src", tmp_path / "out", test_fraction=0.25, seed=3, progress=False)
    by_bytes = {pathlib.Path(p).read_bytes(): (p, c, x) for p, (c, x) in written.items()}
    paths = {}
    for split, n in (("train", 45), ("test", 15)):
        records = read_split(out, split)
        assert len(records) == n
        labels = [label for _, label in records]
        assert np.bincount(labels).tolist() == [n // 3] * 3  # round(0.25 * 20) = 5 per class held out
        for data, label in records:
            path, name, pixels = by_bytes[data]
            assert label == CLASSES.index(name)
            decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.int16)
            assert np.abs(decoded - pixels).max() <= 8  # quality-95 JPEG of a smooth ramp
        paths[split] = {by_bytes[d][0] for d, _ in records}
    assert not paths["train"] & paths["test"] and len(paths["train"] | paths["test"]) == 60
    # The same seed on another run holds out the same images.
    again = plan_folder(tmp_path / "src", test_fraction=0.25, seed=3)
    assert {e.path for e in again.splits["test"]} == paths["test"]
    assert {e.path for e in plan_folder(tmp_path / "src", test_fraction=0.25, seed=4).splits["test"]} != paths["test"]


def test_conversion_resumes_after_a_crash_without_redoing_finished_shards(tmp_path):
    write_folder(tmp_path / "src", 10, "png", seed=1)
    reads = []

    def crash_after_12(path: str) -> bytes:
        if len(reads) == 12:
            raise KeyboardInterrupt  # a killed conversion
        reads.append(path)
        return pathlib.Path(path).read_bytes()

    with pytest.raises(KeyboardInterrupt):
        convert(
            tmp_path / "src",
            tmp_path / "out",
            test_fraction=0.2,
            shard_size=5,
            progress=False,
            read_bytes=crash_after_12,
            workers=1,
        )
    assert not (tmp_path / "out").exists()  # nothing visible until complete
    finished = sorted(p.name for p in (tmp_path / "out.incomplete").iterdir() if "array_record" in p.name)
    assert len(finished) == 2 and not any(n.endswith(".tmp") for n in finished)  # shards of 5: 2 done, 3rd cut

    reads.clear()

    def count(path: str) -> bytes:
        reads.append(path)
        return pathlib.Path(path).read_bytes()

    convert(tmp_path / "src", tmp_path / "out", test_fraction=0.2, shard_size=5, progress=False, read_bytes=count)
    assert len(reads) == 30 - 10  # the two finished shards were not read again
    assert not (tmp_path / "out.incomplete").exists()
    convert(tmp_path / "src", tmp_path / "fresh", test_fraction=0.2, shard_size=5, progress=False)
    for split in ("train", "test"):
        assert read_split(tmp_path / "out", split) == read_split(tmp_path / "fresh", split)

    # An unfinished conversion of other options is refused, not mixed in.
    (tmp_path / "other.incomplete").mkdir()
    (tmp_path / "other.incomplete" / "plan.json").write_text('{"shard_size": 3}')
    with pytest.raises(InvalidDatasetOptionError, match="other.incomplete.*shard_size"):
        convert(tmp_path / "src", tmp_path / "other", test_fraction=0.2, shard_size=5, progress=False)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("exists", "--out {out} already exists"),
        ("no_classes", "{src} has no class folders"),
        ("empty_class", "class folder {src}/bee holds no images"),
        ("bad_image", "cannot read image {src}/ant/bad.jpg"),
    ],
)
def test_command_line_errors_are_one_line_naming_the_input(tmp_path, capsys, case, expected):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    if case != "no_classes":
        write_folder(src, 2, "png", seed=0)
    if case == "exists":
        out.mkdir()
    if case == "empty_class":
        for f in (src / "bee").iterdir():
            f.unlink()
    if case == "bad_image":
        (src / "ant" / "bad.jpg").write_bytes(b"not a jpeg")
    assert main(["--src", str(src), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected.format(src=src, out=out) in err and "Fix:" in err


@pytest.mark.parametrize("damage", ["truncate", "half", "delete"])
def test_a_corrupt_or_missing_shard_is_a_one_line_error_naming_the_file(tmp_path, damage):
    write_folder(tmp_path / "src", 4, "png", seed=0)
    out = convert(tmp_path / "src", tmp_path / "out", test_fraction=0.25, shard_size=3, progress=False)
    shard = out / "src-train.array_record-00001-of-00003"
    data = shard.read_bytes()
    if damage == "truncate":  # under array_record's 64 KB minimum: unreadable
        shard.write_bytes(data[:100])
    elif damage == "half":  # its footer (the record index) is gone
        shard.write_bytes(data[: len(data) // 2])
    else:
        shard.unlink()
    error = DatasetNotFoundError if damage == "delete" else DatasetCorruptError
    with pytest.raises(error, match=f"^shard {re.escape(str(shard))} of split 'train' ") as info:
        RecordReader(open_builder(out), "train")
    assert "\n" not in str(info.value) and "Fix:" in str(info.value)
    RecordReader(open_builder(out), "test")  # the other split's shards are fine
