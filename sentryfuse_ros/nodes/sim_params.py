"""sensor_sim's parameters, declared in one place."""

from __future__ import annotations

from sentryfuse_ros.nodes.encode import IMAGE_ENCODINGS
from sentryfuse_ros.nodes.params import ParamSpec
from sentryfuse_ros.nodes.qos import RELIABILITIES
from sentryfuse_ros.nodes.sim_sources import SOURCES

MAX_FRAME_SIDE = 8192
# Publishing 0 < rate < this is rejected: the nodes' preprocessing refuses such audio anyway.
MIN_AUDIO_RATE_HZ = 1000
MAX_AUDIO_RATE_HZ = 384000
MAX_AUDIO_CHANNELS = 32

PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("source", "dataset", "dataset: the prepared benchmark split (sentryfuse data prepare); synthetic: "
              "generated stand-in samples", choices=SOURCES, read_only=True),
    ParamSpec("split", "test", "dataset split to replay", read_only=True),
    ParamSpec("synthetic_samples", 20, "number of synthetic samples to cycle through", minimum=1, maximum=100000,
              read_only=True),
    ParamSpec("start_index", 0, "first sample replayed", minimum=0, maximum=10**9, read_only=True),
    ParamSpec("sample_period_s", 2.0, "seconds each sample is replayed (the IMU window is 2 s)",
              minimum=0.0, maximum=3600.0, min_exclusive=True),
    ParamSpec("rate_scale", 1.0, "multiplies every sensor's publishing rate (stress tests only: data stays "
              "at its native rate, so audio then runs faster than real time)", minimum=0.0, maximum=100.0,
              min_exclusive=True),
    ParamSpec("camera.topic", "camera/image_raw", "sensor_msgs/Image topic", read_only=True),
    ParamSpec("camera.rate_hz", 15.0, "camera frame rate (the sample's image is repeated)",
              minimum=0.0, maximum=1000.0, min_exclusive=True),
    ParamSpec("camera.frame_id", "camera_optical_frame", "camera header frame_id"),
    ParamSpec("camera.width", 0, "frame width in pixels; 0 (with height 0): the sample's own 28x28 image. The "
              "digit is scaled to the frame's longer side and centred, as the node's preprocessing expects",
              minimum=0, maximum=MAX_FRAME_SIDE, read_only=True),
    ParamSpec("camera.height", 0, "frame height in pixels; 0 (with width 0): the sample's own size",
              minimum=0, maximum=MAX_FRAME_SIDE, read_only=True),
    ParamSpec("camera.encoding", "mono8", "Image encoding: mono8, or bgr8 / rgb8 with the gray digit in every "
              "channel", choices=IMAGE_ENCODINGS, read_only=True),
    ParamSpec("imu.topic", "imu/data", "sensor_msgs/Imu topic", read_only=True),
    ParamSpec("imu.rate_hz", 100.0, "IMU rate; each message is the next row of the sample's trajectory, "
              "recorded at 100 Hz and resampled (polyphase, once per sample) to other rates",
              minimum=0.0, maximum=10000.0, min_exclusive=True),
    ParamSpec("imu.frame_id", "imu_link", "IMU header frame_id"),
    ParamSpec("audio.topic", "audio/chunk", "sentryfuse/AudioChunk topic", read_only=True),
    ParamSpec("audio.chunk_s", 0.05, "seconds of audio per chunk", minimum=0.001, maximum=10.0),
    ParamSpec("audio.frame_id", "microphone", "audio header frame_id"),
    ParamSpec("audio.sample_rate", 0, f"published sample rate in Hz; 0: the clip's own (16 kHz in the dataset), "
              f"else >= {MIN_AUDIO_RATE_HZ} and the clip is resampled (polyphase) once per sample",
              minimum=0, maximum=MAX_AUDIO_RATE_HZ, read_only=True),
    ParamSpec("audio.channels", 1, "interleaved channels per chunk; each is a copy of the mono clip",
              minimum=1, maximum=MAX_AUDIO_CHANNELS, read_only=True),
    ParamSpec("battery.topic", "battery/state", "sensor_msgs/BatteryState topic", read_only=True),
    ParamSpec("battery.rate_hz", 1.0, "battery message rate", minimum=0.0, maximum=1000.0, min_exclusive=True),
    ParamSpec("battery.initial", 1.0, "charge (0..1) at activation; the fault schedule drains or jumps it",
              minimum=0.0, maximum=1.0),
    ParamSpec("battery.frame_id", "battery", "battery header frame_id"),
    ParamSpec("ground_truth_topic", "sentryfuse/ground_truth",
              "std_msgs/Header per sample: stamp = first stamp of the sample, frame_id = class name", read_only=True),
    ParamSpec("fault_schedule", "", "fault schedule YAML (config/faults/*.yaml); empty: no faults", read_only=True),
    ParamSpec("reliability", "best_effort", "reliability of the sensor publishers (best_effort reaches only "
              "best-effort subscribers)", choices=RELIABILITIES, read_only=True),
)


def cross_check(values: dict) -> str | None:
    """Rules spanning several parameters (or holes in one's range); a reason or None."""
    width, height = values["camera.width"], values["camera.height"]
    if (width > 0) != (height > 0):
        return f"camera.width and camera.height must both be 0 (the sample's size) or both > 0, got {width} x {height}"
    rate = values["audio.sample_rate"]
    if 0 < rate < MIN_AUDIO_RATE_HZ:
        return f"audio.sample_rate must be 0 (the clip's own) or >= {MIN_AUDIO_RATE_HZ} Hz, got {rate}"
    if rate and round(values["audio.chunk_s"] * rate) < 1:
        return f"audio.chunk_s ({values['audio.chunk_s']:g} s) holds no sample at {rate} Hz"
    return None
