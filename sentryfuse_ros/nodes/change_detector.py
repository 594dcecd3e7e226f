"""Has the scene changed since the last prediction? A cheap detector for change-triggered inference.

With trigger `change`, inference_node feeds the detector what it took from the sensor queues at
every tick (`observe_frame`, `observe_imu`, `observe_audio`), asks `changed(modalities)` and,
when that gives a reason, runs the model and calls `mark(modalities used)`. Between triggers
nothing else is computed. Each call is a few microseconds of numpy on at most a few thousand
numbers (no Python loop over samples), and a decision depends on the observed data alone: no
clock, no randomness, no label.

One summary per modality, compared with the summary the last prediction used (its reference):

* camera: the newest frame point-sampled on a grid of at most 16x16 pixels (a strided view of the
  message buffer: 256 pixels are converted, never the frame), averaged over its colour channels
  and scaled to [0, 1] by the dtype's full scale. Distance: mean absolute difference from the
  reference grid, a fraction of full scale. A grid of another shape (the frame size changed) is
  a change.
* imu: per-channel mean and standard deviation of the newest IMU_WINDOW_ROWS rows, accelerometer
  in units of standard gravity and gyroscope in rad/s (data.preprocess's normalisation, so one
  threshold serves both). Distance: the largest absolute difference of any of those 12 numbers
  from the reference's (L-infinity).
* audio: RMS level in dB full scale (floored at AUDIO_FLOOR_DB) of the newest AUDIO_WINDOW_S.
  Distance: the level's change in dB from the reference, up (onset) or down (offset).

A modality observed but never marked is a change ("imu: first data"); one without data is not.

Calibration of the defaults (`calibration_report`, which drives this class the way the inference
loop does; reproduce with `python -m sentryfuse_ros.nodes.change_detector --samples 600`, add
`--frame 640x480:bgr8` for frames as sensor_sim makes them for a robot-sized camera). Measured on
the prepared `test` split with 10 Hz ticks and 50 ms audio chunks, first 600 samples [all 3000]:

* camera 0.05: transitions between consecutive samples (every pair has different images):
  599 [2999] pairs, grid distance min 0.121 [0.062], 1st percentile 0.149 [0.135], median 0.259
  [0.260]; 640x480 bgr8 frames: min 0.139, 1st percentile 0.168. 100 % [100 %] fire. A
  repeated frame gives 0 exactly; two copies of a frame with independent camera noise of sd 0.01
  on the sampled pixels differ by at most 0.013, so a camera with noise up to sd ~0.04 of full
  scale stays quiet.
* imu 0.04: the recording's own still start (its first 0.1 s, with the recording's noise) as the
  reference, then the writing: largest distance min 0.075 [0.058], 1st percentile 0.106
  [0.110], median 0.348 [0.349]; 100 % [100 %] fire, also among the recordings whose IMU
  corruption severity is below 0.2 (min 0.075 [0.058]). The pen at rest (the trajectory's first
  row held, as sensor_sim does before a trajectory) and then the trajectory in the inference
  loop: 100 % fire, median first fire 0.1 s into the trajectory (the recording's noise and the
  writing both differ from a row held still). At rest, the row held for 5 s: no tick fires; the
  row plus white noise of sd 0.02 m/s^2 and 0.002 rad/s: no tick fires, largest distance 0.0033
  [0.0039]. The dataset's corruption (white noise up to 0.5 m/s^2 and 0.25 rad/s plus 1-10 Hz
  vibration) is far above the threshold: a heavily corrupted recording fires at most ticks.
* audio_db 6: silence (0.5 s) and then a test clip: 100 % [100 %] fire. Inside a clip, the
  0.25 s level swings by more than 6 dB between speech and the clip's own noise in 100 % [100 %]
  of the clips at an SNR of 10..20 dB, 87 % [83 %] at 0..10 dB and 28 % [25 %] at -10..0 dB
  (level cannot hear speech under louder noise). Silence for 5 s: no tick fires; white noise at
  -60 dBFS for 5 s: no tick fires, largest change 0.24 [0.38] dB. Noise alone, 1 s clips made as
  the dataset's corruption makes them: white and pink never swing by 6 dB (largest 0.56 and
  4.9 dB), brown (1/f^2) does in 71 % of clips (median swing 7.7 dB): brown room noise fires the
  audio detector by itself, because its level really changes that much within a second.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields

import numpy as np

from sentryfuse_ros.modalities import MODALITIES

# Camera: at most this many grid points per side. 16x16 = 256 pixels is enough to see a new
# digit (or a new scene) move the mean absolute difference by > 0.1 and costs ~10 us whatever
# the frame size; the 28x28 dataset frames give a 14x14 grid (every 2nd pixel).
CAMERA_GRID = 16

# IMU: 25 rows = 0.25 s at the dataset's and the simulator's 100 Hz (INPUT_SPEC.imu_rate_hz).
# Short enough that a pen stroke (0.12-0.25 s) fills most of the window and a gesture starting
# from rest shows within a tick or two; long enough that the mean averages white noise down 5x
# and the standard deviation is within ~15 % of the noise's own. At another IMU rate the window
# spans 25 rows, i.e. 25 / rate seconds.
IMU_WINDOW_ROWS = 25
# Units that put accelerometer and gyroscope on one scale (data.preprocess.NORMALISATION's): an
# accelerometer in g (a 0.04 g change is 0.4 m/s^2, a 2.3 degree tilt against gravity) and a
# gyroscope in rad/s (handwriting turns a pen at up to ~1 rad/s). Mean and standard deviation:
# the mean sees posture (gravity's direction) and slow motion, the standard deviation the
# motion's energy (writing, shaking), which averages out of the mean.
ACCEL_UNIT_MS2 = 9.80665
GYRO_UNIT_RADS = 1.0
IMU_FEATURES = tuple(f"{axis} {stat}" for stat in ("mean", "std")
                     for axis in ("ax", "ay", "az", "gx", "gy", "gz"))
_IMU_SCALE = 1.0 / np.array([ACCEL_UNIT_MS2] * 3 + [GYRO_UNIT_RADS] * 3)

# Audio: the newest 0.25 s, about a syllable. A spoken digit lasts 0.3-0.6 s, so the window
# fills with speech at an onset (the full contrast with the noise before it) where a 1 s window
# would dilute it; 4000 samples at 16 kHz hold a white noise's level to +/- 0.1 dB.
AUDIO_WINDOW_S = 0.25
# Floor of the level: digital silence reads -80 dBFS (16-bit PCM's own noise is ~-101 dBFS),
# so silence followed by silence is no change and anything audible above it is one.
AUDIO_FLOOR_DB = -80.0
_AUDIO_FLOOR_POWER = 10.0 ** (AUDIO_FLOOR_DB / 10.0)
# A float chunk peaking above this is integer PCM passed as float (data.preprocess's rule).
MAX_FLOAT_AUDIO_PEAK = 16.0


def _invalid(reason: str) -> Exception:
    # data.preprocess imports torch: imported only when an input is rejected, so this module
    # stays numpy-only (inference_node has preprocess loaded anyway).
    from sentryfuse_ros.data.preprocess import InvalidInput

    return InvalidInput(reason)


@dataclass(frozen=True)
class ChangeThresholds:
    """How much each modality's summary must move from the last prediction's to count as a
    change (the distances are in the module docstring; the defaults' calibration too)."""

    camera: float = 0.05  # mean absolute difference of the grid, fraction of full scale
    imu: float = 0.04  # largest change of a window mean or std, accel in g, gyro in rad/s
    audio_db: float = 6.0  # change of the 0.25 s level, dB (onset or offset)

    def problem(self) -> str | None:
        """Why these values are unusable (not a number, negative, non-finite), else None."""
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                return f"change threshold {field.name} must be a number, got {value!r}"
            if not math.isfinite(value) or value < 0:
                return f"change threshold {field.name} must be a finite number >= 0, got {value!r}"
        return None


DEFAULT_THRESHOLDS = ChangeThresholds()


# ----------------------------------------------------------------------------- summaries


def frame_grid(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) or (H, W) samples (uint8, uint16 or float in [0, 1]) -> float32 grid of at most
    CAMERA_GRID x CAMERA_GRID intensities in [0, 1]: the pixels at the centres of a
    ceil(H/16) x ceil(W/16) tiling (a strided view: only those pixels are read), averaged over
    the colour channels (a fourth channel is alpha and left out)."""
    if not isinstance(pixels, np.ndarray):
        raise _invalid(f"frame must be a numpy array, got {type(pixels).__name__}")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise _invalid(f"frame must be (H, W, C) with C in 1, 3 or 4, got shape {pixels.shape}")
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise _invalid(f"empty frame (shape {pixels.shape})")
    kind, itemsize = pixels.dtype.kind, pixels.dtype.itemsize
    if not (kind == "u" and itemsize in (1, 2)) and kind != "f":
        raise _invalid(f"frame dtype {pixels.dtype} not supported; use uint8, uint16 or float in [0, 1]")
    row_step, col_step = -(-height // CAMERA_GRID), -(-width // CAMERA_GRID)
    view = pixels[row_step // 2::row_step, col_step // 2::col_step, :3]
    grid = view.mean(axis=2, dtype=np.float32)
    if kind == "u":
        grid *= np.float32(1.0 / np.iinfo(pixels.dtype).max)
    else:
        low, high = float(grid.min()), float(grid.max())  # NaN or Inf anywhere makes them so
        if not (math.isfinite(low) and math.isfinite(high)):
            raise _invalid("frame contains NaN or Inf")
        if low < 0.0 or high > 1.0:
            raise _invalid(f"float frame intensities must lie in [0, 1], got [{low:.3g}, {high:.3g}]")
    return grid


class _ImuWindow:
    """The newest IMU_WINDOW_ROWS rows (float64, oldest first) and their summary."""

    def __init__(self):
        self.rows = np.zeros((IMU_WINDOW_ROWS, 6))
        self.count = 0
        self._summary: np.ndarray | None = None

    def push(self, samples: np.ndarray) -> None:
        n = samples.shape[0]
        if n >= IMU_WINDOW_ROWS:
            self.rows[:] = samples[-IMU_WINDOW_ROWS:]
        else:
            self.rows[:-n] = self.rows[n:]  # numpy copies overlapping slices correctly
            self.rows[-n:] = samples
        self.count = min(IMU_WINDOW_ROWS, self.count + n)
        self._summary = None

    def summary(self) -> np.ndarray:
        """[mean of ax..gz, std of ax..gz] of the rows held, accel in g and gyro in rad/s."""
        if self._summary is None:
            rows = self.rows[IMU_WINDOW_ROWS - self.count:] * _IMU_SCALE
            self._summary = np.concatenate([rows.mean(axis=0), rows.std(axis=0)])
        return self._summary


class _AudioLevel:
    """Energies of the newest chunks, enough to cover AUDIO_WINDOW_S: O(chunk) per chunk."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self.window = max(1, round(AUDIO_WINDOW_S * sample_rate))
        self.chunks: deque[tuple[float, int]] = deque()  # (sum of squares, samples), oldest first
        self.samples = 0

    def push(self, energy: float, count: int) -> None:
        self.chunks.append((energy, count))
        self.samples += count
        # Keep the fewest newest chunks that still cover the window.
        while self.samples - self.chunks[0][1] >= self.window:
            self.samples -= self.chunks.popleft()[1]

    def level_db(self) -> float:
        power = math.fsum(energy for energy, _ in self.chunks) / self.samples
        return 10.0 * math.log10(max(power, _AUDIO_FLOOR_POWER))


# ----------------------------------------------------------------------------- detector


class ChangeDetector:
    """Per modality, the newest summary and the one the last prediction used (see the module
    docstring). Not thread-safe: the caller serialises calls (inference_node holds its lock)."""

    def __init__(self, thresholds: ChangeThresholds = DEFAULT_THRESHOLDS):
        problem = thresholds.problem()
        if problem:
            raise ValueError(problem)
        self.thresholds = thresholds  # may be replaced between calls (a parameter change)
        self.clear()

    # --- input -----------------------------------------------------------------------------
    def observe_frame(self, pixels: np.ndarray) -> None:
        """The newest frame, (H, W, C) samples as data.preprocess.image_pixels returns them (uint8,
        uint16, or float in [0, 1]); only its grid is read. InvalidInput if unusable."""
        self._grid = frame_grid(pixels)

    def observe_imu(self, samples: np.ndarray) -> None:
        """(N, 6) rows [ax ay az gx gy gz] in m/s^2 and rad/s, oldest first, N >= 1 (a single (6,)
        row is accepted too). InvalidInput if the shape is wrong or a value is not finite; then no
        row of the batch is used."""
        if not isinstance(samples, np.ndarray):
            raise _invalid(f"IMU samples must be a numpy array, got {type(samples).__name__}")
        if samples.ndim == 1 and samples.shape[0] == 6:
            samples = samples[None]
        if samples.ndim != 2 or samples.shape[1] != 6 or samples.shape[0] == 0:
            raise _invalid(f"IMU samples must have shape (N >= 1, 6), got {samples.shape}")
        if samples.dtype.kind not in "fiu":
            raise _invalid(f"IMU samples must be numeric, got dtype {samples.dtype}")
        if samples.dtype.kind == "f" and not np.isfinite(samples).all():
            raise _invalid("IMU samples contain NaN or Inf")
        if self._imu is None:
            self._imu = _ImuWindow()
        self._imu.push(samples)

    def observe_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        """One mono chunk (float in [-1, 1] full scale, or int16 PCM) at sample_rate Hz, oldest
        chunk first. A new sample rate restarts the level. InvalidInput if unusable."""
        if not isinstance(samples, np.ndarray):
            raise _invalid(f"audio must be a numpy array, got {type(samples).__name__}")
        if samples.ndim == 2 and 1 in samples.shape:
            samples = samples.reshape(-1)
        if samples.ndim != 1 or samples.shape[0] == 0:
            raise _invalid(f"audio must be a non-empty mono chunk (1-D samples), got shape {samples.shape}")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise _invalid(f"audio sample rate must be a positive whole number of Hz, got {sample_rate!r}")
        if samples.dtype == np.int16:
            scale = 1.0 / 32768.0
        elif samples.dtype.kind == "f":
            peak = float(np.abs(samples).max())  # NaN or Inf anywhere makes the peak so
            if not math.isfinite(peak):
                raise _invalid("audio contains NaN or Inf")
            if peak > MAX_FLOAT_AUDIO_PEAK:
                raise _invalid(f"float audio must be full scale [-1, 1], got peak {peak:.4g}; "
                               "scale integer PCM by 1/32768")
            scale = 1.0
        else:
            raise _invalid(f"audio dtype {samples.dtype} not supported; use float in [-1, 1] or int16")
        sample_rate = int(sample_rate)
        if self._audio is None or self._audio.sample_rate != sample_rate:
            self._audio = _AudioLevel(sample_rate)
        tail = samples[-self._audio.window:].astype(np.float64)  # older samples leave the window at once
        self._audio.push(float(np.dot(tail, tail)) * scale * scale, tail.shape[0])

    # --- state -----------------------------------------------------------------------------
    def summary(self, modality: str):
        """The modality's newest summary (camera: float32 grid; imu: 12 numbers, IMU_FEATURES;
        audio: level in dBFS), or None without data."""
        _check_modality(modality)
        if modality == "camera":
            return self._grid
        if modality == "imu":
            return None if self._imu is None else self._imu.summary()
        return None if self._audio is None else self._audio.level_db()

    def distance(self, modality: str) -> float | None:
        """How far the newest summary is from the reference (the module docstring's distances;
        audio signed, + for louder; inf for a camera grid of another shape), or None without
        data or reference."""
        current, reference = self.summary(modality), self._reference[modality]
        if current is None or reference is None:
            return None
        if modality == "camera":
            if current.shape != reference.shape:
                return math.inf
            return float(np.abs(current - reference).mean())
        if modality == "imu":
            return float(np.abs(current - reference).max())
        return current - reference

    def changed(self, modalities: tuple[str, ...]) -> str | None:
        """Among these modalities (in canonical order), why the first one that changed since the
        last mark() did (e.g. "camera 0.21 > 0.05", "imu: first data"), or None."""
        wanted = _checked_modalities(modalities)
        thresholds = self.thresholds
        for modality in MODALITIES:
            if modality not in wanted:
                continue
            current = self.summary(modality)
            if current is None:
                continue
            reference = self._reference[modality]
            if reference is None:
                return f"{modality}: first data"
            if modality == "camera":
                if current.shape != reference.shape:
                    return (f"camera: frame grid changed from {reference.shape[0]}x{reference.shape[1]} "
                            f"to {current.shape[0]}x{current.shape[1]}")
                value = float(np.abs(current - reference).mean())
                if value > thresholds.camera:
                    return f"camera {value:.3g} > {thresholds.camera:g}"
            elif modality == "imu":
                deltas = np.abs(current - reference)
                worst = int(deltas.argmax())
                if deltas[worst] > thresholds.imu:
                    return f"imu {deltas[worst]:.3g} > {thresholds.imu:g} ({IMU_FEATURES[worst]})"
            else:
                delta = current - reference
                if abs(delta) > thresholds.audio_db:
                    kind = "onset" if delta > 0 else "offset"
                    return f"audio {delta:+.1f} dB > {thresholds.audio_db:g} dB ({kind})"
        return None

    def mark(self, modalities: tuple[str, ...]) -> None:
        """A prediction used these modalities: their newest summaries become the reference (one
        without data keeps none, so its first data will be a change)."""
        for modality in _checked_modalities(modalities):
            current = self.summary(modality)
            if modality == "imu" and current is not None:
                current = current.copy()
            self._reference[modality] = current

    def forget(self, modality: str) -> None:
        """The modality is no longer consumed: its data and reference are dropped."""
        _check_modality(modality)
        if modality == "camera":
            self._grid = None
        elif modality == "imu":
            self._imu = None
        else:
            self._audio = None
        self._reference[modality] = None

    def clear(self) -> None:
        """Back to no data and no reference for every modality."""
        self._grid: np.ndarray | None = None
        self._imu: _ImuWindow | None = None
        self._audio: _AudioLevel | None = None
        self._reference: dict[str, object] = {modality: None for modality in MODALITIES}


def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")


def _checked_modalities(modalities) -> set[str]:
    if isinstance(modalities, str):
        modalities = (modalities,)
    for modality in modalities:
        _check_modality(modality)
    return set(modalities)


# ----------------------------------------------------------------------------- calibration


def _percentiles(values) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {}
    p1, p5, p50 = np.percentile(values, [1, 5, 50])
    return {"min": float(values.min()), "p1": float(p1), "p5": float(p5), "median": float(p50),
            "max": float(values.max())}


def _ticks(detector: ChangeDetector, modality: str, feeds) -> tuple[list[int], list[float]]:
    """Run the inference loop over `feeds` (one callable per tick, feeding the detector): at each
    tick ask changed(), mark() when it fires. Tick indices that fired and the distance at every
    tick (0 before a reference exists)."""
    fired, distances = [], []
    for index, feed in enumerate(feeds):
        feed()
        distance = detector.distance(modality)
        distances.append(0.0 if distance is None else abs(distance))
        if detector.changed((modality,)) is not None:
            fired.append(index)
            detector.mark((modality,))
    return fired, distances


def _coloured_noise(length: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white, pink or brown noise as the dataset's corruption makes it (data.corruption)."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequency = np.fft.rfftfreq(length)
    frequency[0] = frequency[1]
    noise = np.fft.irfft(spectrum / frequency ** {"white": 0.0, "pink": 0.5, "brown": 1.0}[colour], n=length)
    noise -= noise.mean()
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def calibration_report(samples, thresholds: ChangeThresholds = DEFAULT_THRESHOLDS, *, frame=None,
                       tick_s: float = 0.1, audio_chunk_s: float = 0.05, static_s: float = 5.0,
                       seed: int = 0) -> dict:
    """How the thresholds do on `samples` (a sequence of objects with .image, .imu, .imu_rate_hz,
    .audio, .audio_rate_hz, like data.dataset.RawSample, or a sim_sources source), with ticks
    every tick_s:

    camera: distance of consecutive samples' frames (pairs with different images) and the share
      that fires; a repeated frame and two copies with camera noise (sd 0.01) of each frame.
    imu: the pen at rest (the trajectory's first row held for static_s), marked, then the
      trajectory played at its rate: share of samples that fire during it and after how long,
      the largest distance reached; at rest (the row held, and with white noise 0.02 m/s^2 /
      0.002 rad/s) the ticks that fire after the first data (should be none).
    audio: silence, then each clip in audio_chunk_s chunks: share that fires during the clip; the
      range of the 0.25 s level inside each clip (speech against the clip's own noise) and the
      share above the threshold; silence and -60 dBFS white noise for static_s; 1 s of white,
      pink and brown noise (the dataset's colours) and the share whose level swings more than
      the threshold.

    `frame(image) -> (H, W, C) pixels` makes the camera frames (default: the image as mono).
    Deterministic for a given seed."""
    pick = samples.sample if hasattr(samples, "sample") else samples.__getitem__  # a sim source or a list
    samples = [pick(index) for index in range(len(samples))]
    rng = np.random.default_rng(seed)
    frame = frame or (lambda image: np.asarray(image)[:, :, None])
    static_ticks = max(2, round(static_s / tick_s))
    report: dict = {"samples": len(samples), "tick_s": tick_s, "thresholds": {
        field.name: getattr(thresholds, field.name) for field in fields(thresholds)}}

    # camera
    pair_distances, noisy, previous = [], [], None
    for index, sample in enumerate(samples):
        pixels = frame(sample.image)
        if previous is not None and not np.array_equal(samples[index - 1].image, sample.image):
            detector = ChangeDetector(thresholds)
            detector.observe_frame(previous)
            detector.mark(("camera",))
            detector.observe_frame(pixels)
            pair_distances.append(detector.distance("camera"))
        previous = pixels
        grid = frame_grid(pixels)  # camera noise on the pixels the grid samples
        copies = np.clip(grid + rng.normal(0.0, 0.01, (2, *grid.shape)), 0.0, 1.0)
        noisy.append(float(np.abs(copies[0] - copies[1]).mean()))
    repeated_fires = 0
    for sample in samples[:20]:
        detector = ChangeDetector(thresholds)
        pixels = frame(sample.image)
        fired, _ = _ticks(detector, "camera", [lambda: detector.observe_frame(pixels)] * static_ticks)
        repeated_fires += len(fired) - 1
    pairs = np.asarray(pair_distances)
    report["camera"] = {
        "pairs": int(pairs.size),
        "pairs_fired": float((pairs > thresholds.camera).mean()) if pairs.size else None,
        "pair_distance": _percentiles(pairs),
        "repeated_frame_fires": repeated_fires,
        "noise_0.01_distance": _percentiles(noisy),
    }

    # imu
    held_fired, held_delay_s, still_max, rest_fires, noisy_fires, noisy_max = [], [], [], 0, 0, 0.0
    for sample in samples:
        imu = np.asarray(sample.imu, dtype=np.float32)
        rate = float(sample.imu_rate_hz)
        rows_per_tick = max(1, round(tick_s * rate))
        chunks = [imu[start:start + rows_per_tick] for start in range(0, imu.shape[0], rows_per_tick)]
        # The pen at rest where it will begin (the row sensor_sim holds before a trajectory), then
        # the trajectory, in the inference loop.
        rest = np.repeat(imu[:1], rows_per_tick, axis=0)
        detector = ChangeDetector(thresholds)
        fired, _ = _ticks(detector, "imu", [lambda: detector.observe_imu(rest)] * static_ticks)
        rest_fires += len(fired) - 1
        fired, _ = _ticks(detector, "imu", [lambda c=c: detector.observe_imu(c) for c in chunks])
        held_fired.append(bool(fired))
        if fired:
            held_delay_s.append((fired[0] + 1) * rows_per_tick / rate)
        # The recording's own still start (>= 0.1 s before the pen moves, with the recording's
        # noise) as the reference, never re-marked: how far the writing takes the summary.
        detector = ChangeDetector(thresholds)
        still_rows = max(1, round(0.1 * rate))
        detector.observe_imu(imu[:still_rows])
        detector.mark(("imu",))
        distances = []
        for start in range(still_rows, imu.shape[0], rows_per_tick):
            detector.observe_imu(imu[start:start + rows_per_tick])
            distances.append(detector.distance("imu"))
        still_max.append(max(distances) if distances else 0.0)
        # At rest with realistic MEMS noise.
        noise = np.array([0.02] * 3 + [0.002] * 3) * rng.standard_normal((static_ticks * rows_per_tick, 6))
        rows = (imu[:1] + noise).astype(np.float32)
        detector = ChangeDetector(thresholds)
        fired, distances = _ticks(detector, "imu", [lambda c=c: detector.observe_imu(c)
                                                    for c in np.split(rows, static_ticks)])
        noisy_fires += len(fired) - 1
        noisy_max = max(noisy_max, max(distances))
    still = np.asarray(still_max)
    report["imu"] = {
        "held_rest_then_trajectory_fired": float(np.mean(held_fired)),
        "held_rest_first_fire_s": _percentiles(held_delay_s),
        "still_start_max_distance": _percentiles(still),
        "still_start_fired": float((still > thresholds.imu).mean()),
        "still_start_max_distances": [float(d) for d in still],
        "rest_fires": rest_fires,
        "rest_noise_fires": noisy_fires,
        "rest_noise_max_distance": noisy_max,
    }

    # audio
    onset_fired, clip_ranges, chunk_rate = [], [], None
    for sample in samples:
        audio = np.asarray(sample.audio, dtype=np.float32)
        rate = int(sample.audio_rate_hz)
        chunk = max(1, round(audio_chunk_s * rate))
        chunks_per_tick = max(1, round(tick_s / audio_chunk_s))
        clip_chunks = [audio[start:start + chunk] for start in range(0, audio.size, chunk)]
        silence = np.zeros(chunk, dtype=np.float32)
        detector = ChangeDetector(thresholds)

        def feed(pieces):
            def run():
                for piece in pieces:
                    detector.observe_audio(piece, rate)
            return run

        ticks = [feed([silence] * chunks_per_tick)] * max(1, round(0.5 / tick_s))
        first, _ = _ticks(detector, "audio", ticks)
        fired, _ = _ticks(detector, "audio", [feed(clip_chunks[start:start + chunks_per_tick])
                                              for start in range(0, len(clip_chunks), chunks_per_tick)])
        onset_fired.append(bool(fired))
        # The 0.25 s level after every chunk once the window is full: speech against the clip's noise.
        levels = ChangeDetector(thresholds)
        window_chunks = math.ceil(AUDIO_WINDOW_S * rate / chunk)
        seen = []
        for index, piece in enumerate(clip_chunks):
            levels.observe_audio(piece, rate)
            if index + 1 >= window_chunks:
                seen.append(levels.summary("audio"))
        if seen:
            clip_ranges.append(max(seen) - min(seen))
        chunk_rate = (chunk, rate)
    chunk, rate = chunk_rate or (round(audio_chunk_s * 16000), 16000)
    chunks_per_tick = max(1, round(tick_s / audio_chunk_s))
    static = {}
    for name, level_db in (("silence", None), ("white_-60dB", -60.0)):
        detector = ChangeDetector(thresholds)
        ticks = []
        for _ in range(static_ticks):
            if level_db is None:
                pieces = [np.zeros(chunk, np.float32)] * chunks_per_tick
            else:
                pieces = [(10 ** (level_db / 20) * rng.standard_normal(chunk)).astype(np.float32)
                          for _ in range(chunks_per_tick)]
            ticks.append(lambda pieces=pieces: [detector.observe_audio(p, rate) for p in pieces])
        fired, distances = _ticks(detector, "audio", ticks)
        static[name] = {"fires": len(fired) - 1, "max_change_db": max(distances)}
    noise_swings = {}
    window = round(AUDIO_WINDOW_S * rate)
    for colour in ("white", "pink", "brown"):
        swings = []
        for _ in range(100):
            noise = _coloured_noise(rate, colour, rng)
            power = np.convolve(noise * noise, np.ones(window), "valid")[::chunk] / window
            levels_db = 10 * np.log10(np.maximum(power, _AUDIO_FLOOR_POWER))
            swings.append(float(levels_db.max() - levels_db.min()))
        noise_swings[colour] = {"range_db": _percentiles(swings),
                                "above_threshold": float(np.mean(np.asarray(swings) > thresholds.audio_db))}
    ranges = np.asarray(clip_ranges)
    report["audio"] = {
        "onset_after_silence_fired": float(np.mean(onset_fired)),
        "clip_level_range_db": _percentiles(ranges),
        "clip_range_above_threshold": float((ranges > thresholds.audio_db).mean()) if ranges.size else None,
        "clip_level_ranges_db": [float(r) for r in ranges],
        "static": static,
        "noise_1s": noise_swings,
    }
    return report


def main(argv: list[str] | None = None) -> int:
    """Print calibration_report on the prepared test split (loading it needs the data stack)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=600, help="first N samples of the split")
    parser.add_argument("--split", default="test")
    parser.add_argument("--tick-s", type=float, default=0.1)
    parser.add_argument("--frame", default="", help="WxH:encoding as sensor_sim makes it (e.g. 640x480:bgr8)")
    args = parser.parse_args(argv)
    from sentryfuse_ros.data.dataset import load_split

    split = load_split(args.split)
    samples = [split.raw(index) for index in range(min(args.samples, len(split)))]
    frame = None
    if args.frame:
        from sentryfuse_ros.nodes.encode import camera_frame

        size, encoding = args.frame.split(":")
        width, height = (int(v) for v in size.split("x"))

        def frame(image):
            pixels = camera_frame(image, width, height, encoding)
            return pixels if pixels.ndim == 3 else pixels[:, :, None]

    report = calibration_report(samples, tick_s=args.tick_s, frame=frame)
    snr = split.corruption.audio_snr_db.numpy()[:len(samples)]
    ranges = np.asarray(report["audio"].pop("clip_level_ranges_db"))
    report["audio"]["clip_range_above_threshold_by_snr"] = {
        f"{low:g}..{high:g} dB": float((ranges[(snr >= low) & (snr < high)] > DEFAULT_THRESHOLDS.audio_db).mean())
        for low, high in ((-10, 0), (0, 10), (10, 20.01)) if ((snr >= low) & (snr < high)).any()}
    severity = split.corruption.imu_severity.numpy()[:len(samples)]
    still = np.asarray(report["imu"].pop("still_start_max_distances"))
    report["imu"]["still_start_fired_imu_severity_below_0.2"] = float(
        (still[severity < 0.2] > DEFAULT_THRESHOLDS.imu).mean())
    report["imu"]["still_start_max_distance_imu_severity_below_0.2"] = _percentiles(still[severity < 0.2])
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
