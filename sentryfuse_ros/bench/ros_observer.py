"""The bench's listener: Prediction, ModalityState and ground truth, received in the bench process.

End-to-end latency of a Prediction = its receipt time on this node's ROS clock minus its header
stamp, the stamp of the newest sensor message it used (sensor_sim stamps at publish time, on the
same system clock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sentryfuse.msg import ModalityState, Prediction
from std_msgs.msg import Header

from sentryfuse_ros.bench.plan_switch import SwitchTracker
from sentryfuse_ros.bench.sample_ledger import PlanUsed, SampleLedger
from sentryfuse_ros.modalities import MODALITIES
from sentryfuse_ros.nodes.qos import latched_state_qos, reliable_qos
from sentryfuse_ros.nodes.stamps import stamp_to_ns


@dataclass(frozen=True)
class PredictionTiming:
    end_to_end_ms: float
    inference_ms: float  # the node's own inference_time_ms: preprocessing + forward pass
    live_set: str  # modalities used, e.g. "camera+imu+audio"


@dataclass(frozen=True)
class Topics:
    prediction: str
    state: str
    ground_truth: str


class RosObserver:
    def __init__(self, node, topics: Topics, ledger: SampleLedger, switches: SwitchTracker):
        self.node = node
        self.ledger = ledger
        self.switches = switches
        self.timings: list[PredictionTiming] = []
        self.first_prediction_at: float | None = None  # time.monotonic()
        self.state_seen = False
        # Rates heartbeat_monitor measured while each sensor was alive: did the sim keep its rates?
        self.sensor_rates_hz: dict[str, list[float]] = {name: [] for name in MODALITIES}
        self._subscriptions = [
            node.create_subscription(Prediction, topics.prediction, self._on_prediction, reliable_qos(100)),
            node.create_subscription(ModalityState, topics.state, self._on_state, latched_state_qos()),
            # Reliable and latched, so no announcement is missed: the k-th one is the k-th sample.
            node.create_subscription(Header, topics.ground_truth, self._on_truth, latched_state_qos()),
        ]

    def _on_prediction(self, msg: Prediction) -> None:
        received_ns = self.node.get_clock().now().nanoseconds
        now = time.monotonic()
        stamp_ns = stamp_to_ns(msg.header.stamp)
        used = tuple(msg.used_modalities)
        self.timings.append(PredictionTiming((received_ns - stamp_ns) / 1e6, msg.inference_time_ms, "+".join(used)))
        self.ledger.on_prediction(stamp_ns, msg.label, PlanUsed(msg.plan_id, used, round(float(msg.prune_ratio), 2)),
                                  received_ns)
        self.switches.on_prediction(now, msg.plan_id)
        if self.first_prediction_at is None:
            self.first_prediction_at = now

    def _on_state(self, msg: ModalityState) -> None:
        self.state_seen = True
        for name in MODALITIES:
            if getattr(msg, f"{name}_alive"):
                self.sensor_rates_hz[name].append(getattr(msg, f"{name}_rate_hz"))
        live = tuple(name for name in MODALITIES if name in msg.live_modalities)
        self.switches.on_state(time.monotonic(), live, msg.power_level)

    def _on_truth(self, msg: Header) -> None:
        self.ledger.on_truth(stamp_to_ns(msg.stamp), msg.frame_id)
