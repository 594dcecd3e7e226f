"""`sentryfuse data from-bag BAG... --name NAME`: a labelled dataset cut from rosbag2 bags exactly as
inference_node cuts its windows.

Each bag's sensor messages are deserialized as the node receives them (rclpy), in log-time
(arrival) order, and run through the node's own per-tick logic (nodes/offline_loop.py: the
node's decoders, SensorWindows, scene segmentation) with ticks at --rate-hz (the shipped full
power rate, 10 Hz, by default). A labelled interval's sample is the model input of the last tick
inside it: the prediction in force at its end, which is how the live node is scored. So a model
trained on the dataset sees what the node will feed it. A live node's ticks keep no phase with
its sensors, so the loop runs at --phases tick phases (4): a training interval gives a sample per
phase (windows ending up to one tick apart, all of them windows the node may predict on);
validation and test keep the one at half a tick, the mean offset.

The input spec comes from the data: modalities (the sensor topics found), image channels (the
encoding: mono -> 1, colour -> 3), IMU rate (median stamp interval) and axes (the fields the IMU
provides: covariance[0] != -1), audio sample rate, window lengths (the median label interval,
unless --imu-window-s / --audio-window-s say otherwise) and class names (the labels, in natural
order). The image is resized to --image-size (28 by default: the model's patches are 7x7).

Labels: the label topic (std_msgs/Header, frame_id = class; default: the bag's
sentryfuse/ground_truth topic) or --labels FILE.csv (bags/labels.py has the format). Samples are
assigned to train / val / test in blocks of --block consecutive samples (consecutive windows
overlap, so a block keeps neighbours in one split), drawn with --seed in the ratio --val/--test.

Every message the node would reject, every interval without a sample and why, and every bag's
clock offset are in the summary; nothing is dropped silently.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sentryfuse_ros.bags import types as bag_types
from sentryfuse_ros.bags.errors import BagError, report, warn
from sentryfuse_ros.bags.labels import LabelError, LabelInterval, intervals_from_csv, intervals_from_topic
from sentryfuse_ros.bags.stamps import NS_PER_S

COMMAND = "data from-bag"
SENSOR_TYPES = {"sensor_msgs/msg/Image": "camera", "sensor_msgs/msg/Imu": "imu", "sentryfuse/msg/AudioChunk": "audio"}
LABEL_TYPE = "std_msgs/msg/Header"
PROBE_MESSAGES = 200  # messages per topic read to measure rates and fields


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bags", nargs="+", type=Path, metavar="BAG", help="rosbag2 bags (directories or .mcap/.db3)")
    parser.add_argument("--name", required=True, help="dataset name (written to DATA_DIR/datasets/NAME) or a directory")
    parser.add_argument("--labels", metavar="TOPIC|FILE.csv", action="append",
                        help="the label topic, or a CSV of intervals (one per bag, in order); "
                             "default: the bag's .../ground_truth topic")
    parser.add_argument("--modalities", help="comma-separated subset of camera,imu,audio (default: those in the bag)")
    parser.add_argument("--image-size", type=int, default=28, help="side the camera frame is resized to (28)")
    parser.add_argument("--imu-window-s", type=float, help="IMU window (default: the median label interval)")
    parser.add_argument("--audio-window-s", type=float, help="audio window (default: the median label interval)")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="the node's tick rate the samples are cut at (10)")
    parser.add_argument("--phases", type=int, default=4,
                        help="training samples per interval, cut at this many tick phases (a live node's ticks keep no "
                             "phase with its sensors); validation and test take one (4)")
    parser.add_argument("--val", type=float, default=0.15, help="fraction of samples for validation (0.15)")
    parser.add_argument("--test", type=float, default=0.15, help="fraction of samples for testing (0.15)")
    parser.add_argument("--block", type=int, default=8, help="consecutive samples kept in one split (8)")
    parser.add_argument("--seed", type=int, default=0, help="draws the blocks' splits")
    parser.add_argument("--force", action="store_true", help="replace an existing dataset of that name")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the summary as JSON here")


@dataclass
class BagSource:
    """One bag's connections by role, and what its probe measured."""

    path: Path
    reader: object
    sensors: dict[str, list] = field(default_factory=dict)  # modality -> connections
    label_connections: list = field(default_factory=list)
    csv: Path | None = None
    classes: dict[str, object] = field(default_factory=dict)  # modality -> rclpy class
    clock_offset_ns: int = 0  # median (log time - stamp) of the sensor messages
    intervals: list[LabelInterval] = field(default_factory=list)  # on the stamp clock


def run(args: argparse.Namespace) -> int:
    from sentryfuse_ros.data.recorded import DatasetError

    try:
        summary = from_bags(args)
    except (BagError, LabelError, DatasetError) as error:
        return report(COMMAND, error)
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def from_bags(args: argparse.Namespace) -> dict:
    from sentryfuse_ros.bags.replay import open_bag
    from sentryfuse_ros.data.recorded import dataset_dir_for_writing

    _check_arguments(args)
    out = dataset_dir_for_writing(args.name, args.force)
    label_args = args.labels or []
    if len(label_args) not in (0, 1, len(args.bags)):
        raise BagError(f"--labels given {len(label_args)} times for {len(args.bags)} bags: give one for all, or one per bag")
    sources = []
    for index, path in enumerate(args.bags):
        label = label_args[index] if len(label_args) == len(args.bags) else (label_args[0] if label_args else None)
        if label and label.endswith(".csv") and len(label_args) == 1 and len(args.bags) > 1:
            raise BagError("a CSV of labels belongs to one bag: give --labels once per bag")
        sources.append(_plan_source(path, open_bag(path), label))
    try:
        spec, measured = _spec_from(sources, args)
        per_bag = [_cut(source, spec, args) for source in sources]
    finally:
        for source in sources:
            source.reader.close()
    return _write(out, spec, measured, per_bag, args)


def _check_arguments(args: argparse.Namespace) -> None:
    if args.image_size < 1:
        raise BagError(f"--image-size must be positive, got {args.image_size}")
    if args.rate_hz <= 0:
        raise BagError(f"--rate-hz must be positive, got {args.rate_hz}")
    for name in ("imu_window_s", "audio_window_s"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise BagError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if not (0 <= args.val < 1 and 0 <= args.test < 1 and args.val + args.test < 1):
        raise BagError(f"--val {args.val} and --test {args.test} must be fractions that leave some training data")
    if args.block < 1:
        raise BagError(f"--block must be at least 1, got {args.block}")
    if args.phases < 1:
        raise BagError(f"--phases must be at least 1, got {args.phases}")


def _plan_source(path: Path, reader, label: str | None) -> BagSource:
    """Which connections carry which modality and the labels; BagError for a bag that cannot serve."""
    source = BagSource(path, reader)
    by_type: dict[str, dict[str, list]] = {}
    for connection in reader.connections:
        by_type.setdefault(bag_types.normalise_msgtype(connection.msgtype), {}).setdefault(connection.topic, []).append(connection)
    for msgtype, modality in SENSOR_TYPES.items():
        topics = by_type.get(msgtype, {})
        if len(topics) > 1:
            raise BagError(f"{path}: several {msgtype} topics ({', '.join(sorted(topics))}); one per modality is supported")
        if topics:
            (connections,) = topics.values()
            cls = bag_types.import_msg_class(msgtype)
            if cls is None:
                raise BagError(f"{path}: cannot load the message type {msgtype} here")
            source.sensors[modality], source.classes[modality] = connections, cls
    if not source.sensors:
        found = ", ".join(f"{c.topic} ({c.msgtype})" for c in reader.connections) or "nothing"
        raise BagError(f"{path}: no sensor topic (sensor_msgs/Image, sensor_msgs/Imu or sentryfuse/AudioChunk); "
                       f"the bag has {found}")
    if label and label.endswith(".csv"):
        source.csv = Path(label)
        return source
    headers = by_type.get(LABEL_TYPE, {})
    if label:
        wanted = label if label.startswith("/") else "/" + label
        if wanted not in headers:
            raise BagError(f"{path}: no label topic {wanted} of type {LABEL_TYPE} (its Header topics: "
                           f"{', '.join(sorted(headers)) or 'none'})")
        source.label_connections = headers[wanted]
    else:
        guessed = [topic for topic in headers if topic.rstrip("/").endswith("ground_truth")]
        if len(guessed) != 1:
            raise BagError(f"{path}: no label topic found (expected one .../ground_truth {LABEL_TYPE} topic); "
                           "name it with --labels TOPIC or give --labels FILE.csv")
        source.label_connections = headers[guessed[0]]
    return source


def _messages(source: BagSource, connections, limit: int | None = None):
    """(log time ns, modality or None for labels, rclpy message), log-time order."""
    from rclpy.serialization import deserialize_message

    role = {id(c): (m, source.classes[m]) for m, group in source.sensors.items() for c in group}
    label_cls = bag_types.import_msg_class(LABEL_TYPE)
    for count, (connection, log_ns, raw) in enumerate(source.reader.messages(connections=connections)):
        if limit is not None and count >= limit:
            return
        modality, cls = role.get(id(connection), (None, label_cls))
        try:
            msg = deserialize_message(bytes(raw), cls)
        except Exception as error:  # noqa: BLE001 - bytes that are not the recorded type
            raise BagError(f"{source.path}: a {connection.topic} message does not deserialize as {connection.msgtype} "
                           f"({error})") from None
        yield log_ns, modality, msg


def _spec_from(sources: list[BagSource], args: argparse.Namespace):
    """The input spec measured from the bags (and the figures it came from)."""
    from sentryfuse_ros.data.preprocess import IMAGE_ENCODINGS
    from sentryfuse_ros.data.spec import IMU_AXES, InputSpec
    from sentryfuse_ros.modalities import MODALITIES, canonical_subset
    from sentryfuse_ros.nodes.stamps import stamp_to_ns

    present = set.intersection(*(set(s.sensors) for s in sources))
    if args.modalities:
        try:
            modalities = canonical_subset(name.strip() for name in args.modalities.split(","))
        except ValueError as error:
            raise BagError(f"--modalities: {error}") from None
        absent = [m for m in modalities if m not in present]
        if absent:
            raise BagError(f"--modalities asks for {', '.join(absent)}, which not every bag records")
    else:
        modalities = tuple(m for m in MODALITIES if m in present)
    measured: dict = {}
    fields: dict = {"modalities": modalities}
    intervals = []
    for source in sources:
        probe: dict[str, list] = {m: [] for m in source.sensors}
        offsets = []
        for modality, group in source.sensors.items():
            for log_ns, _, msg in _messages(source, group, PROBE_MESSAGES):
                probe[modality].append(msg)
                if stamp_to_ns(msg.header.stamp):
                    offsets.append(log_ns - stamp_to_ns(msg.header.stamp))
        source.clock_offset_ns = int(statistics.median(offsets)) if offsets else 0
        source.intervals = _intervals(source)
        intervals += source.intervals
        if "camera" in modalities:
            encodings = {msg.encoding for msg in probe["camera"]}
            unknown = sorted(encodings - set(IMAGE_ENCODINGS))
            if unknown:
                raise BagError(f"{source.path}: image encoding {', '.join(unknown)} is not one SentryFuse reads "
                               f"({', '.join(IMAGE_ENCODINGS)})")
            channels = {1 if IMAGE_ENCODINGS[e][1] == 1 else 3 for e in encodings}
            measured.setdefault("image_channels", set()).update(channels)
            measured.setdefault("image_encodings", set()).update(encodings)
        if "imu" in modalities:
            stamps = [stamp_to_ns(msg.header.stamp) for msg in probe["imu"]]
            steps = [b - a for a, b in zip(stamps, stamps[1:]) if b > a]
            if not steps:
                raise BagError(f"{source.path}: the IMU stamps do not advance; its rate cannot be measured")
            measured.setdefault("imu_rate_hz", []).append(NS_PER_S / statistics.median(steps))
            has_gyro = all(msg.angular_velocity_covariance[0] != -1 for msg in probe["imu"])
            has_accel = all(msg.linear_acceleration_covariance[0] != -1 for msg in probe["imu"])
            axes = (IMU_AXES[:3] if has_accel else ()) + (IMU_AXES[3:] if has_gyro else ())
            if not axes:
                raise BagError(f"{source.path}: the IMU provides neither linear acceleration nor angular velocity")
            measured.setdefault("imu_axes", []).append(axes)
        if "audio" in modalities:
            measured.setdefault("audio_rate_hz", set()).update(msg.sample_rate for msg in probe["audio"])
    if not intervals:
        raise BagError("no labelled interval in the bags")
    # To 10 ms: stamp jitter would otherwise make a 2 s sample a 1.99999 s window.
    median_s = round(statistics.median((i.end_ns - i.start_ns) / NS_PER_S for i in intervals), 2)
    if "camera" in modalities:
        if len(measured["image_channels"]) > 1:
            raise BagError(f"the bags mix grey and colour images ({', '.join(sorted(measured['image_encodings']))})")
        fields |= {"image_size": args.image_size, "image_channels": measured["image_channels"].pop()}
    if "imu" in modalities:
        axes_seen = set(measured["imu_axes"])
        if len(axes_seen) > 1:
            raise BagError(f"the bags' IMUs provide different fields: {sorted(axes_seen)}")
        rate = _nice_rate(statistics.median(measured["imu_rate_hz"]))
        window_s = args.imu_window_s or median_s
        fields |= {"imu_rate_hz": rate, "imu_axes": axes_seen.pop(),
                   "imu_window_samples": max(1, round(window_s * rate))}
        measured["imu_rate_hz"] = [round(r, 2) for r in measured["imu_rate_hz"]]
    if "audio" in modalities:
        rates = measured["audio_rate_hz"]
        if len(rates) > 1 or 0 in rates:
            raise BagError(f"the audio chunks' sample rates are {sorted(rates)}: one rate is needed")
        fields |= {"audio_rate_hz": int(next(iter(rates))), "audio_window_s": args.audio_window_s or median_s}
    fields["class_names"] = tuple(sorted({i.name for i in intervals}, key=_natural))
    try:
        spec = InputSpec(**fields)
    except ValueError as error:
        raise BagError(f"the bags do not make a usable dataset: {error}") from None
    measured = {key: sorted(value) if isinstance(value, set) else value for key, value in measured.items()}
    measured["median_interval_s"] = round(median_s, 3)
    return spec, measured


def _natural(name: str):
    """'2' before '10', then text."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def _nice_rate(rate_hz: float) -> float:
    """A measured rate as the nominal one it jitters around (a whole number of Hz when within 2%)."""
    rounded = round(rate_hz)
    return float(rounded) if rounded and abs(rate_hz / rounded - 1) <= 0.02 else round(rate_hz, 2)


def _intervals(source: BagSource) -> list[LabelInterval]:
    from sentryfuse_ros.nodes.stamps import stamp_to_ns

    first_ns = source.reader.start_time - source.clock_offset_ns
    end_ns = source.reader.end_time - source.clock_offset_ns
    if source.csv is not None:
        return intervals_from_csv(source.csv, first_ns)
    labels = [(stamp_to_ns(msg.stamp), msg.frame_id.strip())
              for _, _, msg in _messages(source, source.label_connections)]
    labels.sort(key=lambda label: label[0])
    if not labels:
        raise BagError(f"{source.path}: the label topic {source.label_connections[0].topic} has no messages")
    return intervals_from_topic(labels, end_ns)


def tick_phases(count: int) -> list[float]:
    """Tick phases the samples are cut at: half a tick first (the mean offset of a live node's
    ticks; the phase of validation and test samples), then evenly around the tick."""
    return [(0.5 + k / count) % 1.0 for k in range(count)]


def _cut(source: BagSource, spec, args: argparse.Namespace) -> dict:
    """This bag's samples: per interval, the node's model inputs at its last tick inside it, at
    each tick phase (the first phase's sample first)."""
    from sentryfuse_ros.nodes.offline_loop import replay

    start_ns = source.reader.start_time
    rejected: Counter = Counter()
    first_reason: dict[str, str] = {}

    def reject(name: str, problem: str) -> None:
        rejected[name] += 1
        first_reason.setdefault(name, problem)

    connections = [c for m in spec.modalities for c in source.sensors[m]]
    duration_s = (source.reader.end_time - start_ns) / NS_PER_S + 1.0 / args.rate_hz
    # Interval bounds on the log-time clock, where the ticks are.
    bounds = [((i.start_ns + source.clock_offset_ns - start_ns) / NS_PER_S,
               (i.end_ns + source.clock_offset_ns - start_ns) / NS_PER_S) for i in source.intervals]
    per_interval: list[list] = [[] for _ in source.intervals]
    skipped, ticks = Counter(), 0
    for number, phase in enumerate(tick_phases(args.phases)):
        timeline = (((log_ns - start_ns) / NS_PER_S, modality, msg)
                    for log_ns, modality, msg in _messages(source, connections))
        result = replay(timeline, duration_s, args.rate_hz, "rate", "", spec=spec,
                        reject=reject if number == 0 else lambda *_: None, tick_phase=phase)
        ticks += result.ticks
        tick = 0
        for index, (begin_s, end_s) in enumerate(bounds):
            # The interval is [begin, end): a tick at its end already holds the next one's data.
            while tick + 1 < len(result.times_s) and result.times_s[tick + 1] < end_s:
                tick += 1
            why = None
            if not result.times_s or not begin_s <= result.times_s[tick] < end_s:
                why = "no tick with data inside the interval"
            elif any(m not in result.inputs[tick] for m in spec.modalities):
                why = f"no {'+'.join(m for m in spec.modalities if m not in result.inputs[tick])} window at its end"
            if why is None and (number == 0 or per_interval[index]):
                per_interval[index].append((result.inputs[tick], result.stamps_ns[tick]))
            elif number == 0:
                skipped[why] += 1  # an interval is kept only with its first phase's sample
    samples = [(interval, cuts) for interval, cuts in zip(source.intervals, per_interval) if cuts]
    return {"bag": str(source.path), "samples": samples, "skipped": dict(skipped), "ticks": ticks,
            "rejected": {name: {"count": n, "first": first_reason[name]} for name, n in rejected.items()},
            "clock_offset_ms": round(source.clock_offset_ns / 1e6, 3), "intervals": len(source.intervals)}


def _write(out: Path, spec, measured: dict, per_bag: list[dict], args: argparse.Namespace) -> dict:
    import torch

    from sentryfuse_ros.data.recorded import RecordedSplit, input_shapes, save_dataset

    everything = [sample for bag in per_bag for sample in bag["samples"]]  # (interval, [(inputs, stamp)...])
    if not everything:
        reasons = {reason: n for bag in per_bag for reason, n in bag["skipped"].items()}
        raise BagError(f"no sample could be cut from the bags: {reasons}")
    assignment = split_blocks(len(everything), args.block, args.val, args.test, args.seed)
    splits = {}
    for split in ("train", "val", "test"):
        # Training takes every phase's sample of an interval, validation and test the first.
        rows = [(interval, cut) for (interval, cuts), where in zip(everything, assignment) if where == split
                for cut in (cuts if split == "train" else cuts[:1])]
        inputs = {m: torch.cat([cut[0][m] for _, cut in rows]) if rows else torch.zeros((0, *shape))
                  for m, shape in input_shapes(spec).items()}
        labels = torch.tensor([spec.class_names.index(interval.name) for interval, _ in rows], dtype=torch.long)
        splits[split] = RecordedSplit(inputs, labels, torch.tensor([cut[1] for _, cut in rows], dtype=torch.long))
    provenance = {"bags": [bag["bag"] for bag in per_bag], "rate_hz": args.rate_hz, "phases": args.phases,
                  "block": args.block,
                  "seed": args.seed, "measured": measured, "labels": args.labels or ["ground_truth topic"]}
    save_dataset(out, spec, splits, provenance)
    return {
        "dataset": str(out),
        "spec": spec.to_dict(),
        "measured": measured,
        "splits": {split: len(data) for split, data in splits.items()},
        "intervals_per_split": {split: assignment.count(split) for split in splits},
        "classes": dict(sorted(Counter(s[0].name for s in everything).items(), key=lambda kv: _natural(kv[0]))),
        "bags": [{key: value for key, value in bag.items() if key != "samples"} | {"samples": len(bag["samples"])}
                 for bag in per_bag],
    }


def split_blocks(count: int, block: int, val: float, test: float, seed: int) -> list[str]:
    """'train' / 'val' / 'test' per sample: blocks of `block` consecutive samples, a seeded
    shuffle of the blocks, the first ones to test and val in proportion (at least one block each
    when there are three or more blocks and the fraction is non-zero)."""
    import random

    blocks = list(range((count + block - 1) // block))
    random.Random(seed).shuffle(blocks)
    n_test = round(test * len(blocks)) or (1 if test > 0 and len(blocks) >= 3 else 0)
    n_val = round(val * len(blocks)) or (1 if val > 0 and len(blocks) >= 3 else 0)
    where = {b: "test" for b in blocks[:n_test]} | {b: "val" for b in blocks[n_test:n_test + n_val]}
    return [where.get(index // block, "train") for index in range(count)]


def print_summary(summary: dict) -> None:
    from sentryfuse_ros.data.spec import InputSpec, describe_task

    print(f"dataset {summary['dataset']}: {describe_task(InputSpec.from_dict(summary['spec']))}")
    print("splits: " + ", ".join(f"{split} {n} samples of {summary['intervals_per_split'][split]} intervals"
                                 for split, n in summary["splits"].items()))
    print("samples per class: " + ", ".join(f"{name} {n}" for name, n in summary["classes"].items()))
    for bag in summary["bags"]:
        line = f"  {bag['bag']}: {bag['samples']} of {bag['intervals']} intervals, clock offset {bag['clock_offset_ms']} ms"
        print(line)
        for reason, n in bag["skipped"].items():
            warn(COMMAND, f"{bag['bag']}: {n} intervals without a sample: {reason}")
        for name, rejected in bag["rejected"].items():
            warn(COMMAND, f"{bag['bag']}: {rejected['count']} {name} messages rejected as the node would "
                          f"(first: {rejected['first']})")
