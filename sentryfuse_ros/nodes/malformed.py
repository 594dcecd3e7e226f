"""Malformed variants of valid sensor messages, for sensor_sim's fault injection.

Each kind breaks one thing a receiver must check; fault_schedule.MALFORMED_KINDS lists the
kinds per sensor and every one of them has a breaker here.
"""

from __future__ import annotations

import array
import copy

from sentryfuse_ros.nodes.stamps import NS_PER_S, ns_to_stamp, stamp_to_ns

# Far enough back to be out of order, recent enough to pass a 1 s max-age check.
BACKWARDS_S = 0.5
FUTURE_S = 60.0


def _shift_stamp(msg, seconds: float) -> None:
    msg.header.stamp = ns_to_stamp(stamp_to_ns(msg.header.stamp) + int(seconds * NS_PER_S))


def _truncate_data(msg) -> None:
    msg.data = msg.data[: len(msg.data) // 2]


def _set_nan_sample(msg) -> None:
    msg.samples[0] = float("nan")


STAMP_BREAKERS = {
    "stamp_backwards": lambda msg: _shift_stamp(msg, -BACKWARDS_S),
    "stamp_future": lambda msg: _shift_stamp(msg, FUTURE_S),
    "stamp_zero": lambda msg: setattr(msg.header, "stamp", ns_to_stamp(0)),
}
BREAKERS = {
    "camera": {
        "step_mismatch": lambda msg: setattr(msg, "step", max(0, msg.step - 1)),
        "size_mismatch": _truncate_data,
        "bad_encoding": lambda msg: setattr(msg, "encoding", "not_an_encoding"),
        **STAMP_BREAKERS,
    },
    "imu": {
        "nan": lambda msg: setattr(msg.linear_acceleration, "x", float("nan")),
        "inf": lambda msg: setattr(msg.angular_velocity, "z", float("inf")),
        "no_accel": lambda msg: msg.linear_acceleration_covariance.__setitem__(0, -1.0),
        **STAMP_BREAKERS,
    },
    "audio": {
        "zero_rate": lambda msg: setattr(msg, "sample_rate", 0),
        "empty": lambda msg: setattr(msg, "samples", array.array("f")),
        "nan": _set_nan_sample,
        **STAMP_BREAKERS,
    },
}


def malformed(sensor: str, kind: str, valid_msg):
    """A broken copy of `valid_msg` (the original is left intact); KeyError for an unknown kind."""
    breaker = BREAKERS[sensor][kind]
    msg = copy.deepcopy(valid_msg)
    breaker(msg)
    return msg
