"""Host input pipeline for streamed record datasets: images/s and peak memory.

    python benchmarks/input_pipeline.py all --dir /tmp/input_bench          # everything below, one table
    python benchmarks/input_pipeline.py make --out DIR --images 512         # a JPEG record set
    python benchmarks/input_pipeline.py throughput --records DIR --size 224 --workers 2 [--processes]
    python benchmarks/input_pipeline.py rss --records DIR --size 64         # one epoch, peak RSS
    python benchmarks/input_pipeline.py steptime --records DIR              # training step: streamed vs in memory

``throughput``: batches of :class:`snnjax.data.stream_source.StreamSource` (read + JPEG decode +
random-resized crop + flip, or with ``--eval`` resize + center crop), no model, after a warm-up
batch; prints one JSON line with images/s. ``rss``: streams a whole epoch and prints the process's
peak resident memory (``ru_maxrss``, children included with ``--processes``) against the record
set's size on disk: flat RSS across set sizes means nothing grows with the dataset.

Records are generated: ImageNet-like 375 x 500 JPEGs (quality 90, a smooth scene plus noise, about
the bytes of an average ImageNet JPEG), a pool of distinct images reused under new labels, written
with the same code as ``snnjax.data.write_records``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from snnjax import workdir_layout  # noqa: E402

CLASSES = [f"class_{i:03d}" for i in range(10)]


def _jpeg_pool(count: int, height: int, width: int, seed: int) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    pool = []
    for _ in range(count):
        freq = rng.uniform(0.005, 0.05, (3, 2))
        scene = 127 + 100 * np.sin(freq[:, 0, None, None] * rows + freq[:, 1, None, None] * cols)
        pixels = np.clip(scene.transpose(1, 2, 0) + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        pool.append(buffer.getvalue())
    return pool


def make_records(
    out: pathlib.Path,
    images: int,
    *,
    test_images: int = 64,
    pool_size: int = 64,
    height: int = 375,
    width: int = 500,
    shard_size: int = 256,
) -> dict:
    """Write a record dataset of ``images`` train and ``test_images`` test JPEGs; returns its size."""
    from snnjax.data import write_records as wr

    pool = _jpeg_pool(pool_size, height, width, seed=0)
    features = wr.features_for(CLASSES, 3)
    work = out.with_name(out.name + wr.INCOMPLETE_SUFFIX)
    work.mkdir(parents=True)
    lengths = {}
    for split, n in (("train", images), ("test", test_images)):
        bounds = wr.shard_bounds(n, shard_size)
        lengths[split] = [b - a for a, b in bounds]
        for index, (start, stop) in enumerate(bounds):
            records = [
                features.serialize_example({"image": pool[i % pool_size], "label": i % len(CLASSES)})
                for i in range(start, stop)
            ]
            wr.write_shard(work / wr.shard_name("bench", split, index, len(bounds)), records)
    wr.write_metadata(work, "bench", features, lengths, "input_pipeline benchmark records")
    os.replace(work, out)
    size = sum(p.stat().st_size for p in out.iterdir())
    return {
        "records": str(out),
        "train_images": images,
        "bytes": size,
        "mean_jpeg_bytes": int(np.mean([len(p) for p in pool])),
    }


def _source(args):
    from snnjax.data.stream_source import open_stream

    return open_stream(
        args.records,
        batch_size=args.batch,
        eval_batch_size=args.batch,
        seed=0,
        image_size=args.size,
        workers=args.workers,
        worker_processes=args.processes,
        process_index=0,
        process_count=1,
    )


def throughput(args) -> dict:
    source = _source(args)
    batches = source.eval_batches() if args.eval else source.train_batches(0)
    next(batches)  # warm-up: worker start, first reads
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.batches):
        next(batches)
    wall = time.perf_counter() - t0
    return {
        "what": "eval resize+center crop" if args.eval else "train decode+random resized crop+flip",
        "size": args.size,
        "workers": args.workers,
        "kind": "processes" if args.processes else "threads",
        "images": args.batches * args.batch,
        "images_per_s": args.batches * args.batch / wall,
        "main_cpu_s": time.process_time() - c0,
        "wall_s": wall,
    }


def peak_rss(args) -> dict:
    source = _source(args)
    opened_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # imports + open, before any batch
    t0 = time.perf_counter()
    seen = 0
    for _, batch in zip(range(source.steps_per_epoch), source.train_batches(0)):
        seen += len(batch["label"])
    size = sum(p.stat().st_size for p in pathlib.Path(args.records).iterdir())
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "records_bytes": size,
        "images": seen,
        "wall_s": time.perf_counter() - t0,
        "peak_rss_mb": self_kb / 1024,
        "peak_rss_before_streaming_mb": opened_kb / 1024,
        "peak_rss_children_mb": children_kb / 1024,
        "workers": args.workers,
        "kind": "processes" if args.processes else "threads",
    }


def _run(*argv: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *argv],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_all(args) -> None:
    base = pathlib.Path(args.dir)
    small, large = base / "small", base / "large"
    for path, n in ((small, args.small_images), (large, args.large_images)):
        if not path.exists():
            print(json.dumps({"made": make_records(path, n)}), flush=True)
    print(
        json.dumps(
            {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()}
        ),
        flush=True,
    )
    for size in () if args.skip_throughput else (224, 64):
        for workers, processes in ((1, False), (2, False), (2, True)):
            flags = ["--processes"] if processes else []
            row = _run(
                "throughput",
                "--records",
                str(small),
                "--size",
                str(size),
                "--workers",
                str(workers),
                "--batches",
                str(args.batches),
                *flags,
            )
            print(json.dumps({**row, "loadavg": os.getloadavg()}), flush=True)
    for path in (small, large):
        row = _run("rss", "--records", str(path), "--size", "64", "--workers", "2")
        print(json.dumps({**row, "loadavg": os.getloadavg()}), flush=True)


def step_time(args) -> None:
    """``launch.py`` on the Fashion-MNIST 60k preset, in memory and streamed from its records, alternating.

    Prints one JSON line per run with the summary's training images/s (train time only: no
    compilation, no evaluation) and the load average; the rounds alternate so both share the load.
    """
    import tempfile

    for round_index in range(args.rounds):
        for streamed in (False, True):
            workdir = tempfile.mkdtemp(prefix="steptime_")
            overrides = [
                f"--config.data.train_subset={args.subset}",
                "--config.train.epochs=1",
                "--config.train.progress_bar=False",
                "--config.train.tensorboard=False",
                f"--workdir={workdir}",
            ]
            if streamed:
                overrides += ["--config.data.streaming=True", f"--config.data.records_dir={args.records}"]
            cmd = [
                sys.executable,
                str(REPO / "launch.py"),
                "--config=configs/baseline.py:fashion_mnist_60k",
                *overrides,
            ]
            subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
            with open(workdir_layout.summary(workdir)) as f:
                summary = json.load(f)
            row = {
                "round": round_index,
                "streamed": streamed,
                "train_images_per_s": summary["train_images_per_s"],
                "steps": summary["steps"],
                "test_accuracy": summary["final_test_accuracy"],
                "loadavg": os.getloadavg(),
            }
            print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    make = sub.add_parser("make")
    make.add_argument("--out", required=True)
    make.add_argument("--images", type=int, default=512)
    for name in ("throughput", "rss"):
        p = sub.add_parser(name)
        p.add_argument("--records", required=True)
        p.add_argument("--size", type=int, default=224)
        p.add_argument("--workers", type=int, default=1)
        p.add_argument("--processes", action="store_true")
        p.add_argument("--batch", type=int, default=32)
        p.add_argument("--batches", type=int, default=8)
        p.add_argument("--eval", action="store_true")
    everything = sub.add_parser("all")
    everything.add_argument("--dir", required=True)
    everything.add_argument("--small-images", type=int, default=1024)
    everything.add_argument("--large-images", type=int, default=12288)
    everything.add_argument("--batches", type=int, default=8)
    everything.add_argument("--skip-throughput", action="store_true", help="only the peak-RSS rows")
    steptime = sub.add_parser("steptime")
    steptime.add_argument("--records", required=True, help="write_records --dataset fashion_mnist --out DIR")
    steptime.add_argument("--subset", type=int, default=1280)
    steptime.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.cmd == "make":
        print(json.dumps(make_records(pathlib.Path(args.out), args.images)))
    elif args.cmd == "throughput":
        print(json.dumps(throughput(args)))
    elif args.cmd == "rss":
        print(json.dumps(peak_rss(args)))
    elif args.cmd == "steptime":
        step_time(args)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
