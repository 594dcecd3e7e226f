"""base_station's parameters: the one place they are declared, with limits and descriptions. All are
read at configure (a new model: cleanup, then configure)."""

from __future__ import annotations

from sentryfuse_ros.nodes.params import ParamSpec
from sentryfuse_ros.nodes.power_policy import MAX_RATIO
from sentryfuse_ros.pruning.runtime import POLICIES as RUNTIME_POLICIES

# The offload topics, shared with inference_node's `offload.*` parameters.
REQUEST_TOPIC = "sentryfuse/offload/request"
REPLY_TOPIC = "sentryfuse/offload/reply"
STATUS_TOPIC = "sentryfuse/offload/status"

PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("weights_path", "", "SentryAttend checkpoint it serves (its task must be the robot's); empty: the "
              "shipped weights", read_only=True),
    ParamSpec("gate_path", "", "SentryGate checkpoint for those weights (used when prune_ratio > 0); empty: "
              "sentrygate.safetensors beside them", read_only=True),
    ParamSpec("prune_ratio", 0.0, "fraction of heads and FFN channels removed in the model it runs (0: unpruned)",
              minimum=0.0, maximum=MAX_RATIO, read_only=True),
    ParamSpec("runtime", "auto", "forward runtime of each plan: auto, eager or onnxruntime", choices=RUNTIME_POLICIES,
              read_only=True),
    ParamSpec("num_threads", 1, "CPU threads one forward pass may use", minimum=1, maximum=64, read_only=True),
    ParamSpec("request_topic", REQUEST_TOPIC, "OffloadRequest from robots", read_only=True),
    ParamSpec("reply_topic", REPLY_TOPIC, "where answers (Prediction, origin remote) are published", read_only=True),
    ParamSpec("status_topic", STATUS_TOPIC, "BaseStationStatus heartbeat", read_only=True),
    ParamSpec("heartbeat_hz", 4.0, "heartbeats per second: a robot judges the link lost after its "
              "offload.link_timeout_s without one", minimum=0.0, maximum=100.0, min_exclusive=True, read_only=True),
    ParamSpec("diagnostics_hz", 1.0, "rate of the base station's diagnostics on /diagnostics",
              minimum=0.0, maximum=10.0, min_exclusive=True, read_only=True),
)
