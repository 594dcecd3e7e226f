"""`sentryfuse data gesture-bag OUT`: the real BasicMotions wrist-IMU recordings (data/gestures.py) as a
labelled rosbag2 bag (MCAP), for a second task beside the digits.

Topics, stamps and log times alike on one clock starting at START_NS (a fixed epoch, so a bag is
byte-for-byte the same every time):
- /imu/data sensor_msgs/msg/Imu: one message per recorded row at `rate_hz` (the recording's own
  10 Hz by default), frame_id imu_link; linear_acceleration = the accelerometer (m/s^2, gravity
  removed, as recorded), angular_velocity = the gyroscope (rad/s); orientation_covariance[0] = -1
  (not provided); the other covariances are 0 (unknown).
- between two gestures a rest of `gap_s` during which the IMU goes on publishing, so the stream
  is continuous like a real sensor: a still watch, which in this gravity-removed data reads zero
  acceleration and zero rotation.
- /sentryfuse/ground_truth std_msgs/msg/Header: one per gesture, stamp = its first IMU stamp,
  frame_id = the class name (the simulator's label convention: a label holds from its stamp to
  the next label, so a rest counts with the gesture before it; labels.csv has the exact extents).

OUT/labels.csv: `start_s,end_s,label`, one row per gesture, start and end being the header stamps
of its first and last IMU sample in seconds since the Unix epoch (the stamps' clock), 9 decimals.

The files list the recordings grouped by class; the bag takes them round-robin over the classes
(a class's first recording, then every class's second, ...), so the label changes at every
gesture and `--limit 4` already covers every class.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from sentryfuse_ros.bags.errors import BagError, report

COMMAND = "data gesture-bag"
START_NS = 1_700_000_000 * 1_000_000_000
IMU_TOPIC, LABEL_TOPIC = "/imu/data", "/sentryfuse/ground_truth"
IMU_TYPE, LABEL_TYPE = "sensor_msgs/msg/Imu", "std_msgs/msg/Header"
FRAME_ID = "imu_link"
LABELS_CSV = "labels.csv"
DEFAULT_GAP_S = 0.5


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from sentryfuse_ros.data.gestures import SPLITS

    parser.add_argument("out", metavar="OUT", type=Path, help="bag directory to create (must not exist)")
    parser.add_argument("--split", choices=SPLITS, default="train", help="BasicMotions split (default: train)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N gestures (default: all)")
    parser.add_argument("--gap", type=float, default=DEFAULT_GAP_S, metavar="S",
                        help=f"rest between two gestures, in seconds (default {DEFAULT_GAP_S:g})")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the summary as JSON here")


def run(args: argparse.Namespace) -> int:
    try:
        summary = write_gesture_bag(args.out, args.split, gap_s=args.gap, limit=args.limit)
    except BagError as error:
        return report(COMMAND, error)
    print(f"bag {summary['bag']}: {summary['gestures']} {summary['dataset']} {summary['split']} gestures "
          f"({', '.join(f'{n} {c}' for c, n in summary['classes'].items())}), {summary['imu_messages']} IMU "
          f"messages at {summary['rate_hz']:g} Hz over {summary['duration_s']:.1f} s; labels also in {summary['labels_csv']}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


def gesture_order(labels: np.ndarray) -> list[int]:
    """Dataset indices round-robin over the classes, each class in file order."""
    queues = [list(np.flatnonzero(labels == c)) for c in sorted(set(labels.tolist()))]
    order = []
    while any(queues):
        order.extend(int(q.pop(0)) for q in queues if q)
    return order


def write_gesture_bag(out_dir: Path, split: str, rate_hz: float | None = None, gap_s: float = DEFAULT_GAP_S,
                      limit: int | None = None) -> dict:
    """Write the bag and its labels.csv; the summary. BagError for a bad argument, an existing
    OUT or a missing dataset, before anything is written. rate_hz: the stamps' rate (None: the
    recording's; another rate plays the recording faster or slower)."""
    from sentryfuse_ros.data import gestures

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise BagError(f"{out_dir} exists already; refusing to overwrite it (choose a new OUT or remove it)")
    try:
        data = gestures.load_split(split)
    except gestures.GestureDataError as error:
        raise BagError(str(error)) from None
    rate_hz = data.rate_hz if rate_hz is None else rate_hz
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise BagError(f"the rate must be > 0 Hz, got {rate_hz:g}")
    gap_samples = round(gap_s * rate_hz) if math.isfinite(gap_s) and gap_s >= 0 else None
    if gap_samples is None or not math.isclose(gap_samples, gap_s * rate_hz, abs_tol=1e-6):
        raise BagError(f"--gap must be >= 0 s and a whole number of samples at {rate_hz:g} Hz "
                       f"(a multiple of {1 / rate_hz:g} s), got {gap_s:g}")
    if limit is not None and limit < 1:
        raise BagError(f"--limit must be >= 1, got {limit}")
    order = gesture_order(data.labels)[:limit]

    from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

    from sentryfuse_ros.bags.types import typestore

    store = typestore()
    writer = Writer(out_dir, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
    try:
        writer.open()
    except (WriterError, OSError) as error:
        raise BagError(f"cannot create the bag {out_dir}: {error}") from None
    imu_conn = writer.add_connection(IMU_TOPIC, IMU_TYPE, typestore=store, offered_qos_profiles=[_qos(False)])
    label_conn = writer.add_connection(LABEL_TOPIC, LABEL_TYPE, typestore=store, offered_qos_profiles=[_qos(True)])
    make = _Messages(store)
    rest = np.zeros((gap_samples, 6))
    rows, names, tick = [], [], 0
    for n, index in enumerate(order):
        name = data.class_names[data.labels[index]]
        first = _stamp_ns(tick, rate_hz)
        writer.write(label_conn, first, make.label(first, name))
        samples = np.concatenate([data.accel[index], data.gyro[index]], axis=1)
        if n < len(order) - 1:
            samples = np.concatenate([samples, rest])
        for k, sample in enumerate(samples):
            stamp = _stamp_ns(tick + k, rate_hz)
            writer.write(imu_conn, stamp, make.imu(stamp, sample))
        last = _stamp_ns(tick + len(data.accel[index]) - 1, rate_hz)
        names.append(name)
        rows.append(f"{_seconds(first)},{_seconds(last)},{name}")
        tick += len(samples)
    writer.close()
    (out_dir / LABELS_CSV).write_text("start_s,end_s,label\n" + "".join(r + "\n" for r in rows))
    return {
        "bag": str(out_dir),
        "dataset": gestures.DATASET,
        "split": split,
        "gestures": len(order),
        "dataset_indices": order,
        "classes": {c: names.count(c) for c in data.class_names if c in names},
        "imu_messages": tick,
        "label_messages": len(order),
        "rate_hz": rate_hz,
        "gap_s": gap_s,
        "duration_s": (_stamp_ns(tick - 1, rate_hz) - START_NS) / 1e9 if tick else 0.0,
        "labels_csv": str(out_dir / LABELS_CSV),
    }


def _stamp_ns(tick: int, rate_hz: float) -> int:
    return START_NS + round(tick * 1e9 / rate_hz)


def _seconds(ns: int) -> str:
    """Exact decimal seconds (a float would lose the nanoseconds of an epoch stamp)."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _qos(latched: bool):
    """What our nodes offer: the IMU best effort and volatile, the label reliable and transient
    local (nodes/qos.py), so a replay publishes them as the simulator does."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    infinite = QosTime(0, 0)  # rclpy's default: no deadline, lifespan or lease
    return Qos(QosHistory.KEEP_LAST, 1 if latched else 10,
               QosReliability.RELIABLE if latched else QosReliability.BEST_EFFORT,
               QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
               infinite, infinite, QosLiveliness.SYSTEM_DEFAULT, infinite, False)


class _Messages:
    """Serialized CDR of the two message types, with rosbags' own classes (no rclpy needed)."""

    def __init__(self, store):
        self.store = store
        self.Imu = store.types[IMU_TYPE]
        self.Header = store.types[LABEL_TYPE]
        self.Time = store.types["builtin_interfaces/msg/Time"]
        self.Vector3 = store.types["geometry_msgs/msg/Vector3"]
        self.Quaternion = store.types["geometry_msgs/msg/Quaternion"]
        self.unknown = np.array([-1.0] + [0.0] * 8)

    def _header(self, ns: int, frame_id: str):
        return self.Header(stamp=self.Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), frame_id=frame_id)

    def label(self, ns: int, name: str) -> bytes:
        return bytes(self.store.serialize_cdr(self._header(ns, name), LABEL_TYPE))

    def imu(self, ns: int, sample: np.ndarray) -> bytes:
        ax, ay, az, gx, gy, gz = (float(v) for v in sample)
        msg = self.Imu(
            header=self._header(ns, FRAME_ID),
            orientation=self.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
            orientation_covariance=self.unknown,
            angular_velocity=self.Vector3(x=gx, y=gy, z=gz),
            angular_velocity_covariance=np.zeros(9),
            linear_acceleration=self.Vector3(x=ax, y=ay, z=az),
            linear_acceleration_covariance=np.zeros(9),
        )
        return bytes(self.store.serialize_cdr(msg, IMU_TYPE))
