"""What inference_node decides at each tick, without ROS: the sensor windows, the change detector,
whether to predict (the level's trigger) and the model inputs.

inference_node feeds it validated sensor data and asks it at every tick; the offline stream replay
(bench/stream_replay.py) feeds it the messages sensor_sim would publish, on a virtual clock, so
`sentryfuse policy fit` scores a policy's triggers on the whole test split with the node's own
decisions.

Rules (each stated here once):
- A new scene is a camera frame the change detector finds changed against the frame of the last
  prediction. At a new scene the IMU and audio windows are emptied (`segment`): what they hold
  is about the old scene, and a prediction mixing both is wrong until they refill, so the camera
  alone predicts meanwhile (each joins again once its window is half full, SensorWindows.min_fill).
- Trigger `rate`: predict at every tick with new data.
- Trigger `change`, in order: a new scene; the plan changed (live and consumed modalities, or
  the ratio: a modality whose window fills later joins at the next follow-up);
  without a camera, IMU motion or an audio onset since the last prediction stands in for a new
  scene; a follow-up every `follow_up_s` for the model's longest window (the IMU's 2 s) after the
  scene changed: the windows refill and the recording goes on, and the model is most accurate on
  windows that end where its recording ends, so a scene needs predictions through that time;
  after it every window holds only the scene, and a static scene gets no more. Otherwise
  nothing is predicted (and nothing published).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from sentryfuse_ros.data.preprocess import InvalidInput, image_pixels
from sentryfuse_ros.data.spec import INPUT_SPEC, InputSpec
from sentryfuse_ros.nodes.change_detector import ChangeDetector, ChangeThresholds
from sentryfuse_ros.nodes.cpu_account import CpuAccount
from sentryfuse_ros.nodes.decode import image_from_msg
from sentryfuse_ros.nodes.power_policy import LevelPolicy
from sentryfuse_ros.nodes.sensor_windows import SensorWindows, Snapshot
from sentryfuse_ros.nodes.stamps import stamp_to_ns


@dataclass(frozen=True)
class LoopConfig:
    max_skew_s: float = 0.5
    follow_up_s: float = 0.6
    segment: bool = True
    thresholds: ChangeThresholds = ChangeThresholds()

    @classmethod
    def from_values(cls, values, thresholds: ChangeThresholds) -> "LoopConfig":
        return cls(values["max_skew_s"], values["change.follow_up_s"], values["change.segment"], thresholds)


class PredictionLoop:
    """Not thread-safe: inference_node calls it under its lock."""

    def __init__(self, config: LoopConfig, reject: Callable[[str, str], None], cpu: CpuAccount | None = None,
                 spec: InputSpec = INPUT_SPEC):
        self.config = config
        self._reject = reject  # (modality, reason) of a message found unusable here
        self.cpu = cpu or CpuAccount()
        self.windows = SensorWindows(spec)
        self.detector = ChangeDetector(config.thresholds)
        self.watching_change = False  # the level's trigger is `change`: IMU and audio feed the detector
        self.clear()

    def clear(self) -> None:
        self.windows.clear()
        self.detector.clear()
        self._newest_frame = None  # the newest valid camera message, decoded only when used
        self._last_plan_key: tuple | None = None  # (ready modalities, ratio) of the last prediction
        self._scene_started: float | None = None
        self._last_trigger_at = 0.0

    @property
    def spec(self) -> InputSpec:
        return self.windows.spec

    def use_spec(self, spec: InputSpec) -> None:
        """Cut windows for another task's model (a new checkpoint): what they held is dropped."""
        if spec != self.windows.spec:
            self.windows = SensorWindows(spec, self.windows.min_fill)
            self.clear()

    def reconfigure(self, config: LoopConfig) -> None:
        self.config = config
        self.detector.thresholds = config.thresholds

    def watch_change(self, watching: bool) -> None:
        if watching and not self.watching_change:
            self.detector.clear()  # what it saw during a rate-triggered spell is stale
        self.watching_change = watching

    def forget(self, modality: str) -> None:
        """The node stopped consuming `modality`: its data and change reference go."""
        self.windows.forget(modality)
        self.detector.forget(modality)
        if modality == "camera":
            self._newest_frame = None

    # --- data --------------------------------------------------------------------------------
    def add_imu(self, stamps_ns: np.ndarray, frame_id: str, rows: np.ndarray) -> None:
        self.windows.add_imu_many(stamps_ns, frame_id, rows)
        if self.watching_change:
            self.detector.observe_imu(rows)

    def add_audio(self, stamp_ns: int, frame_id: str, chunk: np.ndarray, sample_rate: int) -> None:
        self.windows.add_audio(stamp_ns, frame_id, chunk, sample_rate)
        if self.watching_change:
            self.detector.observe_audio(chunk, sample_rate)

    def offer_frame(self, msg) -> None:
        """The newest valid sensor_msgs/Image: looked at (not converted) at the next tick, decoded
        only if a prediction uses it."""
        self._newest_frame = msg

    # --- a tick --------------------------------------------------------------------------------
    def trigger(self, now: float, wanted: tuple[str, ...], level: LevelPolicy) -> str | None:
        """Why to predict now on `wanted` (live, consumed modalities) at this level, or None."""
        started = self.cpu.start()
        scene = self._scene_change(now, wanted)
        reason = ("rate" if level.trigger == "rate"
                  else self._change(now, wanted, level.prune_ratio, scene, level.rate_hz))
        self.cpu.add("detect change", started)
        return reason

    def snapshot(self, wanted: tuple[str, ...]) -> Snapshot:
        """Model inputs for `wanted` (the newest frame decoded now if the camera is wanted)."""
        if "camera" in wanted and self._newest_frame is not None:
            started = self.cpu.start()
            msg, self._newest_frame = self._newest_frame, None
            try:
                image = image_from_msg(msg, self.spec.image_channels)
                self.windows.add_image(stamp_to_ns(msg.header.stamp), msg.header.frame_id, image)
            except InvalidInput as error:
                self._reject("camera", str(error))
            self.cpu.add("ingest camera", started)
        return self.windows.snapshot(wanted, self.config.max_skew_s, self.cpu)

    def predicted(self, used: tuple[str, ...]) -> None:
        """A prediction was made on `used`: the change references move to what it saw."""
        self.detector.mark(used)

    def _scene_change(self, now: float, wanted: tuple[str, ...]) -> str | None:
        if "camera" not in wanted or self._newest_frame is None:
            return None
        msg = self._newest_frame
        try:
            pixels, _ = image_pixels(msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian))
            self.detector.observe_frame(pixels)
        except InvalidInput as error:
            self._reject("camera", str(error))
            self._newest_frame = None
            return None
        reason = self.detector.changed(("camera",))
        if reason:
            self._scene_started = now
            if self.config.segment:
                for name in ("imu", "audio"):
                    self.windows.forget(name)
        return reason

    def _change(self, now: float, wanted: tuple[str, ...], ratio: float, scene: str | None,
                level_rate_hz: float) -> str | None:
        reason = scene
        if (wanted, ratio) != self._last_plan_key:
            self._last_plan_key = (wanted, ratio)
            reason = reason or f"plan {'+'.join(wanted) or '-'}@{ratio:.2f}"
        if reason is None and "camera" not in wanted:
            reason = self.detector.changed(self.windows.ready(wanted))
            if reason:
                self._scene_started = now
        if reason is None and self._scene_started is not None:
            reason = self._follow_up(now, 1.0 / level_rate_hz)
        if reason is not None:
            self._last_trigger_at = now
        return reason

    def _follow_up(self, now: float, tick_s: float) -> str | None:
        """At the tick nearest each follow-up time (a timer a little early must not push it a
        whole tick late)."""
        step_s, since_s = self.config.follow_up_s, now - self._scene_started
        longest_s = max(self.windows.spec.imu_window_s, self.windows.spec.audio_window_s)
        if step_s <= 0 or since_s >= longest_s or now - self._last_trigger_at < step_s - tick_s / 2:
            return None
        return f"follow-up {since_s:.2f} s after the scene changed"
