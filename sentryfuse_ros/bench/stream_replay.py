"""Offline: sensor_sim's streams through inference_node's own decisions, on a virtual clock.

The messages are the ones sensor_sim publishes at the shipped rates (camera 15 Hz 28x28 mono8,
IMU 100 Hz, 50 ms audio chunks at 16 kHz, a sample every 2 s), built with the same timeline
functions (nodes/replay_timeline.py) and encoders, and read back with the node's decoders into a
PredictionLoop (nodes/prediction_loop.py): the windows, change detector and trigger the node
uses. A tick runs every 1/rate_hz seconds of virtual time, half a tick off the sample boundaries
(a live node's ticks keep no phase with the simulator's: half a tick is the mean offset; the loop
itself is nodes/offline_loop.py). No middleware: no message is late or lost, so this measures
what the policy's triggers and windows do to accuracy, not the machine.

A replay records each prediction's model inputs; `score` then runs them through the plans of
any prune ratio, so one replay per (rate, trigger, shed) behaviour serves every ratio. Scoring is
the live one (scoring.RunningScore via SampleLedger): a sample is scored by the prediction in
force at its end; the onset delay is from its start to the first correct prediction on its data.
"""

from __future__ import annotations

import numpy as np
import torch

from sentryfuse_ros.bench.sample_ledger import PlanUsed, SampleLedger
from sentryfuse_ros.modalities import CLASS_NAMES
from sentryfuse_ros.nodes import encode, replay_timeline
from sentryfuse_ros.nodes.offline_loop import Replay
from sentryfuse_ros.nodes.stamps import NS_PER_S, ns_to_stamp

CAMERA_HZ, IMU_HZ, AUDIO_CHUNK_S, SAMPLE_PERIOD_S = 15.0, 100.0, 0.05, 2.0
T0_NS = 1_000 * NS_PER_S  # virtual clock origin: stamps well clear of 0


def _ns(t: float) -> int:
    """Virtual time t (s) on the stamp clock."""
    return T0_NS + int(round(t * NS_PER_S))


def _stamp(t: float):
    return ns_to_stamp(_ns(t))


def sim_messages(source, indices: list[int]) -> list[tuple[float, str, object]]:
    """(t, sensor, message) in time order: samples `indices` of `source` played one after another
    for SAMPLE_PERIOD_S each, as sensor_sim plays them (recordings ending at the sample's end)."""
    messages = []
    duration = len(indices) * SAMPLE_PERIOD_S
    samples = {position: source.sample(index) for position, index in enumerate(indices)}
    frames = {position: encode.camera_frame(s.image) for position, s in samples.items()}
    for m in range(int(duration * CAMERA_HZ)):
        t = m / CAMERA_HZ
        position = replay_timeline.sample_at(t, SAMPLE_PERIOD_S, 0)
        messages.append((t, "camera", encode.image_to_msg(frames[position], _stamp(t), "camera", "mono8")))
    for m in range(int(duration * IMU_HZ)):
        t = m / IMU_HZ
        position = replay_timeline.sample_at(t, SAMPLE_PERIOD_S, 0)
        rows, end = samples[position].imu, (position + 1) * SAMPLE_PERIOD_S
        row = rows[replay_timeline.imu_row(end - t, IMU_HZ, len(rows))]
        messages.append((t, "imu", encode.imu_to_msg(row, _stamp(t), "imu")))
    for m in range(1, int(duration / AUDIO_CHUNK_S) + 1):
        t = m * AUDIO_CHUNK_S
        owner = min(replay_timeline.audio_chunk_owner(t, AUDIO_CHUNK_S, SAMPLE_PERIOD_S, 0), len(indices) - 1)
        clip, rate = np.asarray(samples[owner].audio, np.float32), int(samples[owner].audio_rate_hz)
        end = (owner + 1) * SAMPLE_PERIOD_S
        size = round(AUDIO_CHUNK_S * rate)
        chunk = clip[replay_timeline.audio_indices(end - AUDIO_CHUNK_S - t, rate, size, clip.size)]
        messages.append((t, "audio", encode.audio_to_msg(chunk, rate, _stamp(t - AUDIO_CHUNK_S), "mic")))
    messages.sort(key=lambda item: item[0])
    return messages


def score(result: Replay, labels: list[str], cache, ratio: float) -> dict:
    """Accuracy (prediction in force at each sample's end), predictions per sample and the onset
    delay of the replayed predictions run through `cache`'s plans at `ratio`."""
    predicted = [""] * len(result.used)
    by_subset: dict[tuple[str, ...], list[int]] = {}
    for row, used in enumerate(result.used):
        by_subset.setdefault(used, []).append(row)
    with torch.inference_mode():
        for used, rows in by_subset.items():
            plan = cache.get(used, ratio)
            for start in range(0, len(rows), 256):
                part = rows[start:start + 256]
                batch = {name: torch.cat([result.inputs[r][name] for r in part]) for name in used}
                for row, class_id in zip(part, plan.model(batch).argmax(-1).tolist()):
                    predicted[row] = CLASS_NAMES[class_id]
    ledger = SampleLedger(0, len(labels))
    events = [(_ns(k * SAMPLE_PERIOD_S), 0, k) for k in range(len(labels) + 1)]
    events += [(_ns(t), 1, row) for row, t in enumerate(result.times_s)]
    for at_ns, kind, item in sorted(events):
        if kind == 0:
            ledger.on_truth(at_ns, labels[item] if item < len(labels) else "end")
        else:
            ledger.on_prediction(result.stamps_ns[item], predicted[item],
                                 PlanUsed("", result.used[item], ratio), received_ns=at_ns)
    onset = ledger.onset(0, _ns(len(labels) * SAMPLE_PERIOD_S))
    scored = ledger.scored_samples()
    return {
        "accuracy": round(100 * sum(s.correct for s in scored) / len(scored), 2) if scored else None,
        "correct": [s.correct for s in scored],
        "samples": len(scored),
        "predictions_per_sample": round(len(result.used) / len(labels), 2),
        "onset_p50_ms": onset["p50"],
        "never_fraction": onset["never_fraction"],
    }
