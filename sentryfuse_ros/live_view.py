"""`sentryfuse monitor`: a live view of any running SentryFuse system.

Shows, as they happen, each prediction's label and confidence, the live modalities, power
level, prune ratio and plan, the inference time and the end-to-end latency (receipt minus the
newest source stamp), and — when sensor_sim publishes ground truth — running accuracy. A
sample is scored by the last prediction made on its data (the one a robot would act on once
the sample's full IMU window has arrived).
"""

from __future__ import annotations

import argparse
import sys
import time

from sentryfuse_ros.nodes.power_level import LEVEL_NAMES
from sentryfuse_ros.scoring import RunningScore


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", default="", help="namespace the SentryFuse nodes run in")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between status lines")


def run(args: argparse.Namespace) -> int:
    return LiveView(args.namespace).run(args.duration, args.every)


class LiveView:
    def __init__(self, namespace: str = "", output=sys.stdout):
        self.namespace = namespace.rstrip("/")
        self.output = output
        self.score = RunningScore()
        self.latest = None
        self.latest_e2e_ms = 0.0
        self.latest_state = None
        self.previous_plan = ""
        self.count = 0

    def _topic(self, name: str) -> str:
        return f"{self.namespace}/{name}" if self.namespace else name

    def run(self, duration_s: float | None, every_s: float) -> int:
        import rclpy
        from std_msgs.msg import Header

        from sentryfuse.msg import ModalityState, Prediction
        from sentryfuse_ros.nodes.qos import latched_state_qos, reliable_qos
        from sentryfuse_ros.nodes.stamps import stamp_to_ns

        rclpy.init()
        node = rclpy.create_node("sentryfuse_monitor")

        def on_prediction(msg):
            self.latest, self.count = msg, self.count + 1
            self.latest_e2e_ms = (node.get_clock().now().nanoseconds - stamp_to_ns(msg.header.stamp)) / 1e6
            self.score.on_prediction(stamp_to_ns(msg.header.stamp), msg.label)
            # A base station's answer (origin remote) is not a plan change of the robot's.
            if msg.origin != Prediction.ORIGIN_REMOTE and msg.plan_id != self.previous_plan:
                self._print(f"plan -> {msg.plan_id} ({msg.kept_parameters}/{msg.total_parameters} parameters)")
                self.previous_plan = msg.plan_id

        node.create_subscription(Prediction, self._topic("sentryfuse/prediction"), on_prediction, reliable_qos(10))
        node.create_subscription(ModalityState, self._topic("sentryfuse/modality_state"),
                                 lambda m: setattr(self, "latest_state", m), latched_state_qos())
        node.create_subscription(Header, self._topic("sentryfuse/ground_truth"),
                                 lambda m: self.score.on_truth(stamp_to_ns(m.stamp), m.frame_id), latched_state_qos())
        started = next_line = time.monotonic()
        try:
            while duration_s is None or time.monotonic() - started < duration_s:
                rclpy.spin_once(node, timeout_sec=0.05)
                if time.monotonic() >= next_line:
                    self._print(self.status_line(time.monotonic() - started))
                    next_line += every_s
        except KeyboardInterrupt:
            pass
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
        self._print(f"{self.count} predictions; {self.score.summary()}")
        return 0

    def status_line(self, elapsed_s: float) -> str:
        state = self.latest_state
        battery = "battery ?" if state is None or state.battery_percentage != state.battery_percentage else (
            f"battery {100 * state.battery_percentage:.0f}%")
        if self.latest is None:
            return f"t={elapsed_s:5.1f}s waiting for predictions ({battery})"
        p = self.latest
        truth = self.score.truths[-1][1] if self.score.truths else "?"
        accuracy = "" if self.score.accuracy is None else f" | acc {100 * self.score.accuracy:.1f}% ({len(self.score.scored)})"
        return (
            f"t={elapsed_s:5.1f}s truth {truth} pred {p.label} ({p.confidence:.2f}"
            f"{', base station' if p.origin == 'remote' else ''}) "
            f" | used {'+'.join(p.used_modalities)} of live {'+'.join(p.live_modalities)}"
            f" | {LEVEL_NAMES[p.power_level] if p.power_level < len(LEVEL_NAMES) else p.power_level} {battery}"
            f" | ratio {p.prune_ratio:.2f}"
            f" | {p.inference_time_ms:.1f} ms, e2e {self.latest_e2e_ms:.0f} ms{accuracy}"
        )

    def _print(self, line: str) -> None:
        print(line, file=self.output, flush=True)
