"""`sentryfuse monitor`'s status line, without ROS spinning."""

from __future__ import annotations

from sentryfuse.msg import Prediction
from sentryfuse_ros.live_view import LiveView


def _prediction(origin: str) -> Prediction:
    return Prediction(label="7", class_id=7, confidence=0.61, used_modalities=["camera"], live_modalities=["camera"],
                      power_level=2, prune_ratio=0.2, plan_id="camera@0.20", inference_time_ms=1.5, origin=origin)


def test_the_status_line_says_when_the_answer_came_from_the_base_station():
    view = LiveView()
    view.latest = _prediction(Prediction.ORIGIN_REMOTE)
    assert "pred 7 (0.61, base station)" in view.status_line(3.0)
    view.latest = _prediction(Prediction.ORIGIN_LOCAL)
    line = view.status_line(3.0)
    assert "pred 7 (0.61)" in line and "base station" not in line and "low" in line
