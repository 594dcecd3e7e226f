"""The test's side of the wire for heartbeat_monitor: sensor publishers, ModalityState and
/diagnostics subscribers, and a loop that publishes streams at their rates while spinning."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import BatteryState, Image, Imu

from sentryfuse.msg import AudioChunk, ModalityState
from sentryfuse_ros.nodes import encode
from sentryfuse_ros.nodes.qos import latched_state_qos, reliable_qos, sensor_qos

TOPICS = {"camera": (Image, "camera/image_raw"), "imu": (Imu, "imu/data"), "audio": (AudioChunk, "audio/chunk"),
          "battery": (BatteryState, "battery/state")}
IMAGE = np.tile(np.arange(28, dtype=np.uint8), (28, 1))


class MonitorRig:
    def __init__(self, node, namespace: str = "", topics: dict[str, str] | None = None, qos=None):
        self.node = node
        topics = {sensor: f"{namespace}/{name}" for sensor, (_, name) in TOPICS.items()} | (topics or {})
        self.pubs = {s: node.create_publisher(TOPICS[s][0], topics[s], qos or sensor_qos("reliable")) for s in TOPICS}
        self.states: list[tuple[float, ModalityState]] = []
        self.diagnostics: list[DiagnosticArray] = []
        self._subs = [
            node.create_subscription(ModalityState, f"{namespace}/sentryfuse/modality_state",
                                     lambda m: self.states.append((time.monotonic(), m)), latched_state_qos()),
            node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, reliable_qos(10)),
        ]
        self.sent: Counter = Counter()
        self.last_sent: dict[str, float] = {}

    def close(self) -> None:
        for pub in self.pubs.values():
            self.node.destroy_publisher(pub)
        for sub in self._subs:
            self.node.destroy_subscription(sub)

    # --- sending ---------------------------------------------------------------------------
    def message(self, sensor: str):
        stamp = self.node.get_clock().now().to_msg()
        if sensor == "camera":
            return encode.image_to_msg(IMAGE, stamp, "test_camera")
        if sensor == "imu":
            return encode.imu_to_msg(np.array([0.1, 0.0, 9.8, 0.0, 0.0, 0.2]), stamp, "test_imu")
        if sensor == "audio":
            return encode.audio_to_msg(np.zeros(800, np.float32), 16000, stamp, "test_mic")
        raise KeyError(sensor)

    def send(self, sensor: str, msg=None) -> None:
        self.pubs[sensor].publish(msg if msg is not None else self.message(sensor))
        self.sent[sensor] += 1
        self.last_sent[sensor] = time.monotonic()

    def battery(self, percentage: float, charging: bool = False) -> None:
        msg = encode.battery_to_msg(percentage, charging, self.node.get_clock().now().to_msg(), "test_battery")
        self.send("battery", msg)

    def run(self, seconds: float, rates: dict[str, float] | None = None, until=None, on_tick=None) -> bool:
        """Publish `rates` (sensor -> Hz) for at most `seconds` while spinning; stop once until() holds.

        on_tick(now) runs every loop for extra sends. Returns whether until() held (False without one).
        """
        rates = rates or {}
        start = time.monotonic()
        due = {sensor: start for sensor in rates}
        while True:
            now = time.monotonic()
            if until is not None and until():
                return True
            if now - start >= seconds:
                return False
            for sensor, rate in rates.items():
                if now >= due[sensor]:
                    self.send(sensor)
                    due[sensor] = max(due[sensor] + 1.0 / rate, now)  # late: no catch-up burst
            if on_tick is not None:
                on_tick(now)
            wait = min([d - time.monotonic() for d in due.values()] + [0.02])
            rclpy.spin_once(self.node, timeout_sec=max(0.0, wait))

    # --- reading ---------------------------------------------------------------------------
    @property
    def state(self) -> ModalityState | None:
        return self.states[-1][1] if self.states else None

    def status(self, sensor: str):
        """The newest DiagnosticStatus named 'sentryfuse: <sensor>', or None."""
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == f"sentryfuse: {sensor}":
                    return status
        return None

    def status_values(self, sensor: str) -> dict[str, str]:
        status = self.status(sensor)
        return {} if status is None else {kv.key: kv.value for kv in status.values}
