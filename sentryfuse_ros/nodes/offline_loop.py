"""inference_node's per-tick decisions over recorded messages, on a virtual clock (no middleware).

The messages go through the node's decoders (nodes/decode.py) into a PredictionLoop (the node's
windows, change detector and trigger), a tick every 1/rate_hz seconds of virtual time, half a
tick off the clock's origin (a live node's ticks keep no phase with its sensors: half a tick is
the mean offset). Each prediction's model inputs are recorded. Two users:
- `sentryfuse policy fit` (bench/stream_replay.py) replays sensor_sim's streams to score a
  policy's triggers;
- `sentryfuse data from-bag` (bags/dataset.py) cuts a bag into labelled samples: the inputs of
  the prediction in force at each label's end, so a dataset holds exactly what the live node
  would have fed the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from sentryfuse_ros.data.preprocess import InvalidInput
from sentryfuse_ros.data.spec import INPUT_SPEC, InputSpec
from sentryfuse_ros.nodes.decode import audio_from_msg, imu_sample_from_msg
from sentryfuse_ros.nodes.power_policy import LevelPolicy, parse_modalities
from sentryfuse_ros.nodes.prediction_loop import LoopConfig, PredictionLoop
from sentryfuse_ros.nodes.stamps import stamp_to_ns

TICK_PHASE = 0.5  # ticks at (k + 0.5) / rate_hz


@dataclass
class Replay:
    """One behaviour's predictions: when, on which inputs, why."""

    times_s: list[float] = field(default_factory=list)
    stamps_ns: list[int] = field(default_factory=list)
    used: list[tuple[str, ...]] = field(default_factory=list)
    inputs: list[dict[str, torch.Tensor]] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    ticks: int = 0


def _refuse(name: str, problem: str) -> None:
    raise ValueError(f"the replayed {name} message was rejected: {problem}")


def replay(messages, duration_s: float, rate_hz: float, trigger: str, shed: str,
           config: LoopConfig = LoopConfig(), spec: InputSpec = INPUT_SPEC,
           reject: Callable[[str, str], None] = _refuse, tick_phase: float = TICK_PHASE) -> Replay:
    """Run the loop over `messages`, an iterable of (t, sensor, message) in time order (t: virtual
    seconds; read lazily, so a long recording is never all in memory), ticking at rate_hz for duration_s; every modality of the spec that the level does not shed is
    wanted (alive throughout). A message the node would reject goes to `reject(sensor, reason)`
    (by default: raise, for streams that must be clean). Ticks fall at (k + tick_phase) / rate_hz."""
    loop = PredictionLoop(config, reject, spec=spec)
    loop.watch_change(trigger == "change")
    level = LevelPolicy(0.0, rate_hz, trigger, parse_modalities(shed, "shed"))
    wanted = tuple(name for name in level.unshed() if name in spec.modalities)
    result = Replay()
    pending = iter(messages)
    upcoming = next(pending, None)
    period = 1.0 / rate_hz
    imu_batch: list[tuple[int, np.ndarray]] = []
    imu_frame = ""
    for tick in range(int(duration_s * rate_hz)):
        now = (tick + tick_phase) * period
        while upcoming is not None and upcoming[0] <= now:
            _, sensor, msg = upcoming
            upcoming = next(pending, None)
            if sensor not in wanted:
                continue
            try:
                if sensor == "imu":
                    imu_batch.append((stamp_to_ns(msg.header.stamp), imu_sample_from_msg(msg, spec.imu_axes)))
                    imu_frame = msg.header.frame_id
                elif sensor == "audio":
                    loop.add_audio(stamp_to_ns(msg.header.stamp), msg.header.frame_id, audio_from_msg(msg),
                                   msg.sample_rate)
                else:
                    loop.offer_frame(msg)
            except InvalidInput as error:
                reject(sensor, str(error))
        if imu_batch:
            stamps, rows = zip(*imu_batch)
            loop.add_imu(np.array(stamps, np.int64), imu_frame, np.stack(rows))
            imu_batch.clear()
        result.ticks += 1
        why = loop.trigger(now, wanted, level)
        if why is None:
            continue
        snapshot = loop.snapshot(wanted)
        if not snapshot.inputs:
            continue
        used = tuple(snapshot.inputs)
        loop.predicted(used)
        result.times_s.append(now)
        result.stamps_ns.append(snapshot.stamp_ns)
        result.used.append(used)
        result.inputs.append({name: tensor.clone() for name, tensor in snapshot.inputs.items()})
        result.triggers.append(why)
    return result
