"""inference_node's parameters: the one place they are declared, with limits and descriptions."""

from __future__ import annotations

from sentryfuse_ros.nodes.params import ParamSpec
from sentryfuse_ros.nodes.qos import RELIABILITIES
from sentryfuse_ros.nodes.sensor_feed import INGESTION_MODES
from sentryfuse_ros.pruning.runtime import POLICIES as RUNTIME_POLICIES

AUTO_RATIO = -1.0  # prune_ratio value meaning "from the power level through ratio_policy"
MAX_RATIO = 0.9

# Topic parameters: changing one while active re-creates that subscription or publisher.
TOPIC_PARAMS = ("camera.topic", "imu.topic", "audio.topic", "state_topic", "prediction_topic", "reliability",
                "camera.queue_depth", "imu.queue_depth", "audio.queue_depth")
# Fastest streams an automatic queue depth is sized for: a queue holds two prediction periods
# of them, so a prediction that runs late loses nothing.
AUTO_DEPTH_RATES_HZ = {"imu": 400.0, "audio": 100.0}
# Model parameters, in load_models' order: changing one reloads the weights and rebuilds the plans.
MODEL_PARAMS = ("weights_path", "gate_path", "runtime", "num_threads")

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
    ParamSpec("num_threads", 1, "CPU threads one forward pass may use (PyTorch, and each ONNX Runtime session)",
              minimum=1, maximum=64),
    ParamSpec("runtime", "auto", "forward runtime of each plan: auto (measured at plan build, fastest kept), "
              "eager (PyTorch) or onnxruntime", choices=RUNTIME_POLICIES),
    ParamSpec("ingestion", "polled", "how sensor messages are taken: polled (queued in the middleware and taken "
              "once per prediction, no executor wake-up per message) or callbacks (one executor wake-up per message)",
              choices=tuple(INGESTION_MODES), read_only=True),
    # Just over one period of a 100 Hz IMU: long enough to catch its next message, short enough
    # that a composed heartbeat_monitor's watchdogs (the IMU's 50 ms timeout) are not held up.
    ParamSpec("fresh_wait_s", 0.012, "at a prediction, wait up to this long for the next sensor message, so the "
              "prediction is made on data that just arrived (0: use what is queued)", minimum=0.0, maximum=0.1),
    ParamSpec("camera.topic", "camera/image_raw", "sensor_msgs/Image topic"),
    ParamSpec("camera.queue_depth", 1, "camera frames queued between predictions (the newest is used)",
              minimum=1, maximum=100),
    ParamSpec("imu.queue_depth", 0, "IMU messages queued between predictions; 0: two prediction periods "
              f"of a {AUTO_DEPTH_RATES_HZ['imu']:g} Hz IMU", minimum=0, maximum=10000),
    ParamSpec("audio.queue_depth", 0, "audio chunks queued between predictions; 0: two prediction periods "
              f"of {AUTO_DEPTH_RATES_HZ['audio']:g} chunks/s", minimum=0, maximum=10000),
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
