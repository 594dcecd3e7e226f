"""`sentryfuse data prepare | info | from-bag | gesture-bag`: build or inspect the tri-modal digits
benchmark, cut a dataset from bags, write the BasicMotions recordings as a bag."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION", required=True)
    prepare = actions.add_parser(
        "prepare",
        help="download the sources and build the benchmark (idempotent)",
        description="Download the Debian source packages, synthesise the espeak-ng voices and build every "
        "split into DATA_DIR/benchmark. Does nothing if an intact, up-to-date build is there.",
    )
    _data_dir_argument(prepare)
    prepare.add_argument("--force", action="store_true", help="rebuild even if the benchmark is up to date")
    prepare.add_argument(
        "--limit", type=_positive_int, metavar="N",
        help="build at most N samples per split into DATA_DIR/benchmark-limitN (smoke tests)",
    )
    prepare.add_argument(
        "--workers", type=_positive_int, default=2, help="worker processes for building samples (default: 2)"
    )
    from sentryfuse_ros.bags import dataset as bag_dataset, gesture_bag

    from_bag = actions.add_parser("from-bag", help="cut a labelled dataset from rosbag2 bags, as inference_node cuts its windows",
                                  description=bag_dataset.__doc__.split("\n\n")[0])
    bag_dataset.configure_parser(from_bag)
    gestures = actions.add_parser("gesture-bag", help="write the BasicMotions wrist-IMU recordings (in aeon) as a labelled bag",
                                  description=gesture_bag.__doc__.split("\n\n")[0])
    gesture_bag.configure_parser(gestures)
    info = actions.add_parser("info", help="split sizes, voices per split, sources", description="Describe the built benchmark.")
    _data_dir_argument(info)
    info.add_argument("--verify", action="store_true", help="also check every split file against its checksum")


def run(args: argparse.Namespace) -> int:
    # Imported here so `sentryfuse data --help` stays instant.
    from sentryfuse_ros.data import cache

    if args.data_action == "from-bag":
        from sentryfuse_ros.bags import dataset as bag_dataset

        return bag_dataset.run(args)
    if args.data_action == "gesture-bag":
        from sentryfuse_ros.bags import gesture_bag

        return gesture_bag.run(args)
    data_dir = args.data_dir or cache.default_data_dir()
    try:
        if args.data_action == "prepare":
            return _prepare(data_dir, args.force, args.limit, args.workers)
        return _info(data_dir, args.verify)
    except cache.CacheError as error:
        print(f"sentryfuse data: {error}")
        return 1
    except RuntimeError as error:  # SourceError, AudioToolError: missing tools or packages
        print(f"sentryfuse data: {error}")
        return 2


def _prepare(data_dir: Path, force: bool, limit: int | None, workers: int) -> int:
    from sentryfuse_ros.data import cache
    from sentryfuse_ros.data.config import BuildConfig

    config = BuildConfig(limit=limit)
    bench_dir = cache.benchmark_dir(data_dir, limit)
    # Checked before importing the builder (torch, scipy): an up-to-date run takes well under 2 s.
    if not force and cache.is_up_to_date(bench_dir, config.fingerprint()):
        print(f"{bench_dir} is up to date (use --force to rebuild)")
        return 0
    from sentryfuse_ros.data.build import prepare

    result = prepare(data_dir, force=True, config=config, workers=workers)
    print(f"built {result.bench_dir} in {result.seconds:.0f} s ({_megabytes(result.bench_dir):.0f} MB)")
    return 0


def _info(data_dir: Path, verify: bool) -> int:
    from sentryfuse_ros.data import cache
    from sentryfuse_ros.data.config import BuildConfig
    from sentryfuse_ros.data.dataset import load_split

    bench_dir = cache.benchmark_dir(data_dir)
    manifest = cache.read_manifest(bench_dir)
    cache.check_manifest(bench_dir, manifest, BuildConfig().fingerprint(), verify_checksums=verify)
    print(f"benchmark: {bench_dir} ({_megabytes(bench_dir):.0f} MB, built in {manifest['build_seconds']} s)")
    for split in cache.SPLITS:
        data = load_split(split, data_dir)
        voice_counts = Counter(data.voice_names())
        human = sorted(name for name in voice_counts if not name.startswith("espeak"))
        human_share = float((~data.is_synthetic_voice).float().mean())
        print(
            f"  {split:13s} {len(data):6d} samples, camera {data.camera_source}, "
            f"{len(voice_counts)} voices ({human_share:.0%} of clips human: {', '.join(human)})"
        )
    print("sources:")
    for package, version in manifest["source_versions"].items():
        print(f"  {package} {version}")
    if verify:
        print("checksums: ok")
    return 0


def _data_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None,
        help="where sources and the built benchmark live (default: $SENTRYFUSE_DATA_DIR or ~/.cache/sentryfuse)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _megabytes(directory: Path) -> float:
    return sum(path.stat().st_size for path in directory.iterdir() if path.is_file()) / 1e6
