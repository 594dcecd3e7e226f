"""inference_node's parameters: the one place they are declared, with limits and descriptions."""

from __future__ import annotations

from sentryfuse_ros.nodes.params import ParamSpec
from sentryfuse_ros.nodes.qos import RELIABILITIES

AUTO_RATIO = -1.0  # prune_ratio value meaning "from the power level through ratio_policy"
MAX_RATIO = 0.9

# Topic parameters: changing one while active re-creates that subscription or publisher.
TOPIC_PARAMS = ("camera.topic", "imu.topic", "audio.topic", "state_topic", "prediction_topic", "reliability")
# Model parameters: changing one reloads the weights and rebuilds the plan cache.
MODEL_PARAMS = ("weights_path", "gate_path")

PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("weights_path", "", "SentryAttend checkpoint (.safetensors + .json); empty: the shipped weights"),
    ParamSpec("gate_path", "", "SentryGate checkpoint trained for those weights; empty: the shipped gate"),
    ParamSpec("prune_ratio", AUTO_RATIO,
              f"fraction of heads and FFN channels to remove; {AUTO_RATIO:g} = automatic from the power level",
              minimum=AUTO_RATIO, maximum=MAX_RATIO),
    ParamSpec("ratio_policy", (0.0, 0.2, 0.4, 0.6),
              "prune ratio for the full, normal, low and critical power levels (used when prune_ratio is automatic)",
              minimum=0.0, maximum=MAX_RATIO),
    ParamSpec("rate_hz", 10.0, "most predictions per second; each runs as soon as new sensor data is due",
              minimum=0.0, maximum=100.0, min_exclusive=True),
    # One thread: the model is small, and a second thread on a busy 2-core computer waits for
    # the other processes (measured p99 768 ms with 2 threads vs 6.9 ms with 1, bench ros).
    ParamSpec("num_threads", 1, "CPU threads PyTorch may use for one forward pass", minimum=1, maximum=64),
    ParamSpec("camera.topic", "camera/image_raw", "sensor_msgs/Image topic"),
    ParamSpec("imu.topic", "imu/data", "sensor_msgs/Imu topic"),
    ParamSpec("audio.topic", "audio/chunk", "sentryfuse/AudioChunk topic"),
    ParamSpec("state_topic", "sentryfuse/modality_state", "ModalityState from heartbeat_monitor"),
    ParamSpec("prediction_topic", "sentryfuse/prediction", "where Prediction is published"),
    ParamSpec("reliability", "best_effort", "sensor subscription reliability", choices=RELIABILITIES),
    ParamSpec("max_skew_s", 0.5, "a modality whose newest stamp lags the newest used one by more is left out",
              minimum=0.0, maximum=10.0, min_exclusive=True),
    ParamSpec("state_timeout_s", 1.0,
              "ModalityState older than this is ignored and the node judges freshness itself",
              minimum=0.0, maximum=60.0, min_exclusive=True),
    ParamSpec("fallback_timeout_s", 0.5,
              "without ModalityState: a sensor counts as alive while its newest message is younger than this",
              minimum=0.0, maximum=60.0, min_exclusive=True),
    ParamSpec("prebuild_plans", True, "build every (modality subset x power level) plan at configure"),
    ParamSpec("diagnostics_hz", 1.0, "rate of the inference diagnostics on /diagnostics",
              minimum=0.0, maximum=10.0, min_exclusive=True),
)
