"""inference_node's parameters: the one place they are declared, with limits and descriptions."""

from __future__ import annotations

from dataclasses import fields

from sentryfuse_ros.nodes.base_station_params import REPLY_TOPIC, REQUEST_TOPIC, STATUS_TOPIC
from sentryfuse_ros.nodes.change_detector import ChangeThresholds
from sentryfuse_ros.nodes.offload_codec import ENCODINGS
from sentryfuse_ros.nodes.params import ParamSpec
from sentryfuse_ros.nodes.power_level import LEVEL_NAMES
from sentryfuse_ros.nodes.power_policy import AUTO_RATIO, MAX_RATIO, POLICY_DEFAULTS, TRIGGERS, param_name
from sentryfuse_ros.nodes.qos import RELIABILITIES
from sentryfuse_ros.nodes.sensor_feed import INGESTION_MODES
from sentryfuse_ros.pruning.runtime import POLICIES as RUNTIME_POLICIES

# Topic parameters: changing one while active re-creates that subscription or publisher.
TOPIC_PARAMS = ("camera.topic", "imu.topic", "audio.topic", "state_topic", "prediction_topic", "reliability",
                "camera.queue_depth", "imu.queue_depth", "audio.queue_depth", "offload.reply_topic",
                "offload.status_topic")
# Fastest streams an automatic queue depth is sized for: a queue holds two prediction periods
# of them, so a prediction that runs late loses nothing.
AUTO_DEPTH_RATES_HZ = {"imu": 400.0, "audio": 100.0}
# Model parameters, in load_plan_cache's order: changing one reloads the weights and rebuilds the plans.
MODEL_PARAMS = ("weights_path", "gate_path", "runtime", "num_threads")



def _level_specs(level: str) -> tuple[ParamSpec, ...]:
    ratio, rate, trigger, shed, offload = POLICY_DEFAULTS[level]
    return (
        ParamSpec(param_name(level, "prune_ratio"), ratio,
                  f"prune ratio at {level} power (used while prune_ratio is {AUTO_RATIO:g})",
                  minimum=0.0, maximum=MAX_RATIO),
        ParamSpec(param_name(level, "rate_hz"), rate, f"most predictions per second at {level} power",
                  minimum=0.0, maximum=100.0, min_exclusive=True),
        ParamSpec(param_name(level, "trigger"), trigger,
                  f"at {level} power: rate (predict at every tick with new data) or change (only when the "
                  "scene or the plan changed since the last prediction)", choices=TRIGGERS),
        ParamSpec(param_name(level, "shed"), shed,
                  f"modalities not consumed at {level} power, comma-separated (e.g. imu,audio; empty: none); "
                  "heartbeat_monitor still watches them"),
        ParamSpec(param_name(level, "offload"), offload,
                  f"at {level} power, send the inputs of a prediction less confident than offload.confidence_threshold "
                  "to a base station (while one is heard) and publish its answer when it comes within offload.deadline_s"),
    )


CHANGE_DESCRIPTIONS = {
    "camera": "trigger change: mean absolute difference of the newest frame (a 16x16 grid, fraction of full scale) "
              "from the frame of the last prediction that counts as a new scene",
    "imu": "trigger change: distance of the recent IMU summary from the last prediction's that counts as new motion",
    "audio_db": "trigger change: change of the recent audio level, dB, that counts as an onset or offset",
}


def _change_specs() -> tuple[ParamSpec, ...]:
    defaults = ChangeThresholds()
    return tuple(ParamSpec(f"change.{field.name}", float(getattr(defaults, field.name)),
                           CHANGE_DESCRIPTIONS[field.name], minimum=0.0, min_exclusive=True)
                 for field in fields(ChangeThresholds))


def change_thresholds(values) -> ChangeThresholds:
    """The change detector's thresholds of these parameter values."""
    return ChangeThresholds(**{field.name: values[f"change.{field.name}"] for field in fields(ChangeThresholds)})


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("weights_path", "", "SentryAttend checkpoint (.safetensors + .json); empty: the shipped weights"),
    ParamSpec("gate_path", "", "SentryGate checkpoint trained for those weights; empty: sentrygate.safetensors beside them"),
    ParamSpec("prune_ratio", AUTO_RATIO,
              f"fraction of heads and FFN channels to remove; {AUTO_RATIO:g} = automatic from the power level",
              minimum=AUTO_RATIO, maximum=MAX_RATIO),
    *(spec for level in LEVEL_NAMES for spec in _level_specs(level)),
    ParamSpec("policy.value_order", ("camera", "audio", "imu"),
              "modalities from most to least worth their CPU (accuracy added given the others per CPU, "
              "`sentryfuse policy fit`): when a level sheds every live modality, the first live one is kept"),
    *_change_specs(),
    ParamSpec("change.follow_up_s", 0.6, "trigger change: after a scene change, predict again this often for the model's "
              "longest window (2 s), while its IMU and audio windows fill; 0: only on changes",
              minimum=0.0, maximum=10.0),
    ParamSpec("change.segment", True, "at a new camera scene, empty the IMU and audio windows so that no prediction "
              "mixes the old scene's motion and sound with the new frame (every trigger)"),
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
    ParamSpec("offload.confidence_threshold", 0.8, "offload a prediction whose confidence is below this "
              "(1: every prediction at a level that offloads)", minimum=0.0, maximum=1.0),
    ParamSpec("offload.deadline_s", 0.25, "a base station answer later than this after the request is dropped "
              "(the local prediction stands)", minimum=0.0, maximum=10.0, min_exclusive=True),
    ParamSpec("offload.link_timeout_s", 0.5, "the link counts as lost this long after the last base station "
              "heartbeat (local predictions only until the next)", minimum=0.0, maximum=60.0, min_exclusive=True),
    ParamSpec("offload.encoding", "float16", "how inputs cross the link: float16, or int8 (half the bytes)",
              choices=tuple(ENCODINGS)),
    ParamSpec("offload.request_topic", REQUEST_TOPIC, "where OffloadRequest is published"),
    ParamSpec("offload.reply_topic", REPLY_TOPIC, "the base station's answers (Prediction, origin remote)"),
    ParamSpec("offload.status_topic", STATUS_TOPIC, "the base station's heartbeat (BaseStationStatus)"),
    ParamSpec("prebuild_plans", True, "build every (modality subset x power level) plan at configure"),
    ParamSpec("diagnostics_hz", 1.0, "rate of the inference diagnostics on /diagnostics",
              minimum=0.0, maximum=10.0, min_exclusive=True),
)
