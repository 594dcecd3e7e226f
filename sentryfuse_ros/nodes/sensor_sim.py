"""sensor_sim: replays test samples as camera, IMU, audio and battery topics, with scripted faults.

Every `sample_period_s` the next sample is replayed: its image repeated at camera.rate_hz, its
IMU trajectory row by row at imu.rate_hz, its audio in audio.chunk_s chunks; the battery follows
battery.initial and the fault schedule. A robot's streams come from the same samples: a
camera.width x camera.height frame (mono8, bgr8 or rgb8), the IMU trajectory resampled to
imu.rate_hz and the clip to audio.sample_rate (polyphase, once per sample), the clip copied into
audio.channels. IMU rows and audio samples follow the clock
(nodes/replay_timeline.py): the IMU trajectory ends on the sample's end, the audio clip one chunk
earlier, so that its last chunk has been delivered by then. Each sample's label goes out on
ground_truth_topic as a std_msgs/Header (stamp = the first stamp of the sample's messages,
frame_id = class name, e.g. "7"; latched), so a consumer can score predictions whose source
stamps are at or after it.

    python -m sentryfuse_ros.nodes.sensor_sim --ros-args --params-file config/sentryfuse.yaml \
        -p fault_schedule:=config/faults/demo.yaml
"""

from __future__ import annotations

import sys
import time
from fractions import Fraction

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import BatteryState, Image, Imu
from std_msgs.msg import Header

from sentryfuse.msg import AudioChunk
from sentryfuse_ros.modalities import CLASS_NAMES
from sentryfuse_ros.nodes import encode, replay_timeline
from sentryfuse_ros.nodes.fault_schedule import FaultSchedule, FaultScheduleError, MalformedInjector
from sentryfuse_ros.nodes.lifecycle import SentryLifecycleNode, run_node
from sentryfuse_ros.nodes.malformed import malformed
from sentryfuse_ros.nodes.qos import latched_state_qos, sensor_qos
from sentryfuse_ros.nodes.sim_params import PARAMS, cross_check
from sentryfuse_ros.nodes.sim_sources import make_source
from sentryfuse_ros.nodes.stamps import NS_PER_S, ns_to_stamp, stamp_to_ns

FAILURE = TransitionCallbackReturn.FAILURE
SENSOR_TYPES = {"camera": Image, "imu": Imu, "audio": AudioChunk, "battery": BatteryState}


class SensorSim(SentryLifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("sensor_sim", PARAMS, **kwargs)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._values: dict | None = None
        self._pubs: dict = {}
        self._replay_timers: list = []
        self._one_shots: set = set()  # delayed malformed messages

    def cross_check(self, values):
        return cross_check(values)

    # --- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        values = self.checked_parameters()
        if values is None:
            return FAILURE
        try:
            self._source = make_source(values["source"], values["split"], values["synthetic_samples"])
        except Exception as error:  # noqa: BLE001 - any loading problem is reported, not raised
            self.get_logger().error(
                f"cannot load source {values['source']!r} (split {values['split']!r}): {error}. "
                "Run `sentryfuse data prepare`, or set source:=synthetic"
            )
            return FAILURE
        try:
            path = values["fault_schedule"]
            self._faults = FaultSchedule.from_yaml(path) if path else FaultSchedule()
        except FaultScheduleError as error:
            self.get_logger().error(str(error))
            return FAILURE
        self._values = values
        qos = sensor_qos(values["reliability"])
        # No default QoS event handlers: each is a waitable polled on every one of the ~140 timer
        # wake-ups a second; subscribers with incompatible QoS are warned by their own handlers.
        quiet = PublisherEventCallbacks(use_default_callbacks=False)
        self._pubs = {
            s: self.create_lifecycle_publisher(t, values[f"{s}.topic"], qos, event_callbacks=quiet)
            for s, t in SENSOR_TYPES.items()
        }
        self._pubs["ground_truth"] = self.create_lifecycle_publisher(
            Header, values["ground_truth_topic"], latched_state_qos(), event_callbacks=quiet
        )
        self.get_logger().info(
            f"{len(self._source)} samples from {values['source']}"
            f"{' split ' + values['split'] if values['source'] == 'dataset' else ''}; "
            f"{len(self._faults.faults)} faults until t={self._faults.end_s:g} s"
        )
        return super().on_configure(state)

    def on_activate(self, state) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        self._t0 = time.monotonic()
        self._injector = MalformedInjector(self._faults)
        self._sample_index = None
        self._clips: dict[int, tuple[np.ndarray, int, float]] = {}  # sample index -> (audio, rate, end time)
        self._publishing = {sensor: True for sensor in SENSOR_TYPES}
        self._start_timers()
        return result

    def on_parameters_changed(self, values) -> None:
        if self._values is None:
            return
        self._values = values
        if self._replay_timers:
            self._stop()
            self._start_timers()

    def _start_timers(self) -> None:
        v = self._values
        scale = v["rate_scale"]
        self._periods = {
            "camera": 1.0 / v["camera.rate_hz"] / scale,
            "imu": 1.0 / v["imu.rate_hz"] / scale,
            "audio": v["audio.chunk_s"] / scale,
            "battery": 1.0 / v["battery.rate_hz"] / scale,
        }
        callbacks = {"camera": self._on_camera, "imu": self._on_imu, "audio": self._on_audio,
                     "battery": self._on_battery}
        self._replay_timers = [self.create_timer(self._periods[s], callbacks[s], clock=self._steady)
                               for s in callbacks]

    def _stop(self) -> None:
        for timer in (*self._replay_timers, *self._one_shots):
            self.destroy_timer(timer)
        self._replay_timers, self._one_shots = [], set()

    def _release(self) -> None:
        self.destroy_lifecycle_publishers(self._pubs.values())
        self._pubs = {}
        self._values = None

    # --- replay ----------------------------------------------------------------------------
    def _now(self):
        return self.get_clock().now().to_msg()

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    def _advance(self, t: float) -> None:
        """Switch to the sample due at t, announcing its label."""
        v = self._values
        index = replay_timeline.sample_at(t, v["sample_period_s"], v["start_index"])
        if index == self._sample_index:
            return
        self._sample_index = index
        self._sample_end = (index - v["start_index"] + 1) * v["sample_period_s"]
        sample = self._source.sample(index % len(self._source))
        stamp = self._now()
        # Encoded once per sample: every frame of the sample is this message with a new stamp.
        frame = encode.camera_frame(sample.image, v["camera.width"], v["camera.height"], v["camera.encoding"])
        self._camera_msg = encode.image_to_msg(frame, stamp, v["camera.frame_id"], v["camera.encoding"])
        # An IMU faster than the recording: the trajectory band-limited at the IMU's rate; edge
        # padding keeps gravity on the accelerometer at both ends.
        self._imu_rows, _ = _resampled(np.asarray(sample.imu, dtype=np.float32), float(sample.imu_rate_hz),
                                       v["imu.rate_hz"], padtype="edge")
        # The chunk published right after a boundary still holds the previous sample's last audio.
        self._clips = {index - 1: self._clips[index - 1]} if index - 1 in self._clips else {}
        clip, rate = _resampled(np.asarray(sample.audio, dtype=np.float32), int(sample.audio_rate_hz),
                                v["audio.sample_rate"] or int(sample.audio_rate_hz))
        self._clips[index] = (clip, int(rate), self._sample_end)
        self._pubs["ground_truth"].publish(Header(stamp=stamp, frame_id=CLASS_NAMES[int(sample.label)]))

    def _may_publish(self, sensor: str, t: float) -> bool:
        publishing = self._faults.publishing(sensor, t)
        if publishing != self._publishing[sensor]:
            self.get_logger().info(f"fault: {sensor} {'resumes' if publishing else 'stops'} at t={t:.2f} s")
            self._publishing[sensor] = publishing
        return publishing

    def _send(self, sensor: str, msg, t: float) -> None:
        self._pubs[sensor].publish(msg)
        kind = self._injector.take(sensor, t)
        if kind:
            # Half a period later: right behind the good message it would displace it from a
            # depth-1 subscriber queue, and the sensor would look dead instead of noisy.
            bad = malformed(sensor, kind, msg)
            self._later(self._periods[sensor] / 2, lambda: self._pubs[sensor].publish(bad))

    def _later(self, delay_s: float, action) -> None:
        def fire():
            self.destroy_timer(timer)
            self._one_shots.discard(timer)
            action()

        timer = self.create_timer(delay_s, fire, clock=self._steady)
        self._one_shots.add(timer)

    def _on_camera(self) -> None:
        t = self._elapsed()
        self._advance(t)
        if self._may_publish("camera", t):
            self._camera_msg.header.stamp = self._now()
            self._send("camera", self._camera_msg, t)

    def _on_imu(self) -> None:
        t = self._elapsed()
        self._advance(t)
        rate_hz = self._values["imu.rate_hz"] * self._values["rate_scale"]
        row = self._imu_rows[replay_timeline.imu_row(self._sample_end - t, rate_hz, len(self._imu_rows))]
        if self._may_publish("imu", t):
            self._send("imu", encode.imu_to_msg(row, self._now(), self._values["imu.frame_id"]), t)

    def _on_audio(self) -> None:
        t = self._elapsed()
        self._advance(t)
        v = self._values
        chunk_s = v["audio.chunk_s"]
        owner = replay_timeline.audio_chunk_owner(t, chunk_s, v["sample_period_s"], v["start_index"])
        clip, rate, end = self._clips.get(owner, self._clips[self._sample_index])
        size = max(1, round(chunk_s * rate))
        # The clip ends one chunk before the sample does: a microphone delivers a chunk only once
        # it is complete, so this is the last moment the whole recording has arrived.
        chunk = clip[replay_timeline.audio_indices(end - chunk_s - t, rate, size, clip.size)]
        if self._may_publish("audio", t):
            # A microphone publishes a chunk once it is complete: its first sample is chunk_s old.
            stamp = ns_to_stamp(stamp_to_ns(self._now()) - int(chunk_s * NS_PER_S))
            msg = encode.audio_to_msg(chunk, rate, stamp, v["audio.frame_id"], v["audio.channels"])
            self._send("audio", msg, t)

    def _on_battery(self) -> None:
        t = self._elapsed()
        percentage, charging = self._faults.battery(t, self._values["battery.initial"])
        if self._may_publish("battery", t):
            self._pubs["battery"].publish(
                encode.battery_to_msg(percentage, charging, self._now(), self._values["battery.frame_id"])
            )


def _resampled(signal: np.ndarray, rate: float, target_rate: float, padtype: str = "constant"):
    """(signal along axis 0 at target_rate, target_rate), by scipy's polyphase resampling with the
    closest ratio of denominator <= 1000; the signal itself at its own rate."""
    ratio = Fraction(target_rate / rate).limit_denominator(1000)
    if ratio == 1:
        return signal, rate
    from scipy.signal import resample_poly  # only a resampling sim needs it

    resampled = resample_poly(signal, ratio.numerator, ratio.denominator, axis=0, padtype=padtype)
    return resampled.astype(np.float32), target_rate


def main(args: list[str] | None = None) -> int:
    return run_node(SensorSim, args)


if __name__ == "__main__":
    sys.exit(main())
