"""Message types of a bag: the rosbags typestore (ROS 2 kilted plus sentryfuse/msg), the
rclpy Python class of a type name, and the topics `sentryfuse record` records by default.

No rclpy import at module level: a bad bag is diagnosed before any ROS set-up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PACKAGE = "sentryfuse"

# kind: "sensor" (best effort, deep queue), "latched" (reliable + transient local: the latest
# message reaches a late subscriber) or "output" (reliable, volatile).
SENSOR, LATCHED, OUTPUT = "sensor", "latched", "output"


@dataclass(frozen=True)
class TopicSpec:
    topic: str  # relative: resolved in the recorder's namespace
    msgtype: str  # rosbag2 spelling, e.g. sensor_msgs/msg/Image
    kind: str


# The sensor topics, ModalityState, Prediction and the label topic (config/sentryfuse.yaml).
DEFAULT_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("camera/image_raw", "sensor_msgs/msg/Image", SENSOR),
    TopicSpec("imu/data", "sensor_msgs/msg/Imu", SENSOR),
    TopicSpec("audio/chunk", "sentryfuse/msg/AudioChunk", SENSOR),
    TopicSpec("battery/state", "sensor_msgs/msg/BatteryState", SENSOR),
    TopicSpec("sentryfuse/modality_state", "sentryfuse/msg/ModalityState", LATCHED),
    TopicSpec("sentryfuse/prediction", "sentryfuse/msg/Prediction", OUTPUT),
    TopicSpec("sentryfuse/ground_truth", "std_msgs/msg/Header", LATCHED),
)
IMAGE_TYPE = "sensor_msgs/msg/Image"


def default_spec(topic: str) -> TopicSpec | None:
    """The default topic whose name `topic` (relative or absolute, any namespace) ends with."""
    bare = topic.strip("/")
    for spec in DEFAULT_TOPICS:
        if bare == spec.topic or bare.endswith("/" + spec.topic):
            return spec
    return None


def normalise_msgtype(name: str) -> str:
    """'sensor_msgs/Image' or 'sensor_msgs/msg/Image' -> 'sensor_msgs/msg/Image'."""
    parts = name.strip("/").split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    return "/".join(parts)


def msg_dir() -> Path | None:
    """This package's msg/ (the checkout's, else the installed share directory)."""
    checkout = Path(__file__).resolve().parents[2] / "msg"
    if checkout.is_dir():
        return checkout
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory(PACKAGE)) / "msg"
        return share if share.is_dir() else None
    except Exception:  # noqa: BLE001 - no ament index: only the kilted types are known
        return None


@lru_cache(maxsize=1)
def typestore():
    """rosbags typestore of ROS 2 kilted with sentryfuse/msg/* registered from msg/*.msg."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    folder = msg_dir()
    if folder is not None:
        added = {}
        for path in sorted(folder.glob("*.msg")):
            added.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{path.stem}"))
        store.register(added)
    return store


def local_definition(msgtype: str) -> tuple[str, str] | None:
    """(message definition text, RIHS01 hash) of `msgtype` as this machine knows it; None for a
    type the typestore does not have."""
    store = typestore()
    if msgtype not in store.fielddefs:
        return None
    msgdef, _ = store.generate_msgdef(msgtype, ros_version=2)
    return msgdef, store.hash_rihs01(msgtype)


def import_msg_class(msgtype: str):
    """The rclpy message class of 'pkg/msg/Name' with its type support loaded; None where this
    environment has no such message (package not installed, or not a message)."""
    parts = normalise_msgtype(msgtype).split("/")
    if len(parts) != 3 or parts[1] != "msg" or not all(p.isidentifier() for p in parts):
        return None
    try:
        cls = getattr(importlib.import_module(f"{parts[0]}.msg"), parts[2])
        from rclpy.type_support import check_is_valid_msg_type

        check_is_valid_msg_type(cls)
        # Metaclass import of the C type support (what rcl needs to publish or subscribe).
        type(cls).__import_type_support__()
    except Exception:  # noqa: BLE001 - any failure means: this type cannot be used here
        return None
    return cls


def msgtype_of(cls) -> str:
    """'sensor_msgs/msg/Imu' for the rclpy class sensor_msgs.msg.Imu."""
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def stamp_leads(cls) -> bool:
    """Whether a message of this class starts with a header stamp (it is a std_msgs/Header, or its
    first field is one): then the stamp is the first 8 bytes of its CDR payload."""
    if msgtype_of(cls) == "std_msgs/msg/Header":
        return True
    fields = cls.get_fields_and_field_types()
    return bool(fields) and next(iter(fields.values())) == "std_msgs/Header"
