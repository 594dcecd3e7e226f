"""The simulator's fault schedule (YAML) and its malformed messages, which the monitor must reject."""

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time

from conftest import REPO_ROOT
from sentryfuse_ros.data.preprocess import InvalidInput
from sentryfuse_ros.nodes import decode, encode
from sentryfuse_ros.nodes.fault_schedule import (
    MALFORMED_KINDS, FaultSchedule, FaultScheduleError, MalformedInjector,
)
from sentryfuse_ros.nodes.malformed import malformed
from sentryfuse_ros.nodes.stamps import NS_PER_S, StampCheck, StampLimits, stamp_to_ns


def _schedule(*faults):
    return FaultSchedule.from_dict({"faults": list(faults)})


def test_every_shipped_schedule_parses():
    paths = sorted((REPO_ROOT / "config" / "faults").glob("*.yaml"))
    assert paths
    for path in paths:
        assert FaultSchedule.from_yaml(path).faults, path


def test_demo_schedule_covers_every_fault_the_issue_asks_for():
    kinds = {f.fault for f in FaultSchedule.from_yaml(REPO_ROOT / "config" / "faults" / "demo.yaml").faults}
    assert {"drop", "flap", "battery_drain", "malformed"} <= kinds


def test_drop_window_is_half_open():
    schedule = _schedule({"fault": "drop", "sensor": "camera", "at": 10, "duration": 3})
    assert [schedule.publishing("camera", t) for t in (9.99, 10.0, 12.99, 13.0)] == [True, False, False, True]
    assert schedule.publishing("imu", 11.0)


def test_flap_is_on_for_duty_of_each_period():
    schedule = _schedule({"fault": "flap", "sensor": "imu", "at": 5, "duration": 4, "period": 1.0, "duty": 0.25})
    on = [schedule.publishing("imu", 5 + k * 0.125) for k in range(16)]
    assert on == [True, True, False, False, False, False, False, False] * 2
    assert schedule.publishing("imu", 9.5)


def test_battery_drain_jump_raw_and_charging():
    schedule = _schedule(
        {"fault": "battery_drain", "at": 10, "duration": 10, "to": 0.5},
        {"fault": "battery_jump", "at": 30, "to": 0.2},
        {"fault": "battery_raw", "at": 40, "duration": 2, "value": 85.0},
        {"fault": "battery_raw", "at": 50, "duration": 2, "value": float("nan")},
        {"fault": "battery_charging", "at": 60, "duration": 5},
    )
    assert schedule.battery(5, 1.0) == (1.0, False)
    assert schedule.battery(15, 1.0)[0] == pytest.approx(0.75)
    assert schedule.battery(25, 1.0)[0] == pytest.approx(0.5)
    assert schedule.battery(35, 1.0)[0] == pytest.approx(0.2)
    assert schedule.battery(41, 1.0)[0] == 85.0
    assert math.isnan(schedule.battery(51, 1.0)[0])
    assert schedule.battery(62, 1.0) == (pytest.approx(0.2), True)


def test_a_later_battery_event_interrupts_a_drain():
    schedule = _schedule(
        {"fault": "battery_drain", "at": 0, "duration": 10, "to": 0.0},
        {"fault": "battery_drain", "at": 5, "duration": 5, "to": 1.0},
    )
    assert schedule.battery(5, 1.0)[0] == pytest.approx(0.5)
    assert schedule.battery(7.5, 1.0)[0] == pytest.approx(0.75)


def test_malformed_injector_hands_out_count_messages_from_at():
    injector = MalformedInjector(_schedule({"fault": "malformed", "sensor": "audio", "at": 2, "kind": "empty", "count": 2}))
    assert injector.take("audio", 1.9) is None
    assert injector.take("camera", 2.5) is None
    assert [injector.take("audio", 2.0 + k) for k in range(3)] == ["empty", "empty", None]


@pytest.mark.parametrize("fault, words", [
    ({"fault": "explode", "at": 1}, "unknown fault"),
    ({"fault": "drop", "sensor": "camera", "at": 1}, "missing ['duration']"),
    ({"fault": "drop", "sensor": "camera", "at": 1, "duration": 1, "colour": "red"}, "unknown ['colour']"),
    ({"fault": "drop", "sensor": "lidar", "at": 1, "duration": 1}, "sensor must be"),
    ({"fault": "drop", "sensor": "camera", "at": -1, "duration": 1}, "at must be"),
    ({"fault": "flap", "sensor": "imu", "at": 1, "duration": 1, "period": 0}, "period > 0"),
    ({"fault": "malformed", "sensor": "imu", "at": 1, "kind": "step_mismatch"}, "kind for imu"),
    ({"fault": "malformed", "sensor": "battery", "at": 1, "kind": "nan"}, "sensor must be"),
    ({"fault": "battery_jump", "at": 1, "to": 85}, "charge in [0, 1]"),
    ({"fault": "battery_drain", "at": "soon", "duration": 1, "to": 0.5}, "could not convert"),
])
def test_bad_faults_are_rejected_with_their_index_and_reason(fault, words):
    with pytest.raises(FaultScheduleError, match=r"faults\[1\]") as error:
        _schedule({"fault": "drop", "sensor": "audio", "at": 0, "duration": 1}, fault)
    assert words in str(error.value)


def test_unreadable_files_are_reported(tmp_path):
    with pytest.raises(FaultScheduleError, match="cannot read"):
        FaultSchedule.from_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- drop\n")
    with pytest.raises(FaultScheduleError, match="mapping"):
        FaultSchedule.from_yaml(tmp_path / "list.yaml")


NOW_NS = 1_700_000_000 * NS_PER_S
STAMP = Time(sec=1_700_000_000)


def _valid_messages():
    image = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    return {
        "camera": (encode.image_to_msg(image, STAMP, "cam"), decode.image_from_msg),
        "imu": (encode.imu_to_msg(np.array([0, 0, 9.8, 0, 0, 0.1]), STAMP, "imu"), decode.imu_sample_from_msg),
        "audio": (encode.audio_to_msg(np.zeros(800, np.float32), 16000, STAMP, "mic"),
                  lambda msg: decode.audio_from_msg(msg, 16000)),
    }


def test_valid_messages_pass_the_readers():
    for msg, read in _valid_messages().values():
        read(msg)
        assert StampCheck(StampLimits()).problem(msg.header.stamp, NOW_NS) is None


@pytest.mark.parametrize("sensor, kind", [(s, k) for s, kinds in MALFORMED_KINDS.items() for k in kinds])
def test_every_malformed_kind_is_rejected_by_the_monitor_checks(sensor, kind):
    valid, read = _valid_messages()[sensor]
    broken = malformed(sensor, kind, valid)
    check = StampCheck(StampLimits())
    check.accept(valid.header.stamp)
    if kind.startswith("stamp_"):
        assert check.problem(broken.header.stamp, NOW_NS)
    else:
        with pytest.raises(InvalidInput):
            read(broken)
    read(valid)  # the original is untouched
    assert stamp_to_ns(valid.header.stamp) == NOW_NS
