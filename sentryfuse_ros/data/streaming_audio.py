"""An audio stream's newest window at the model's rate, turned into the model's log-mel input
computing only what arrived since the last time. No rclpy.

At the model's rate (what the simulator and the dataset use) the log-mel equals
`preprocess.audio_tensor` of the stream's newest `audio_window_s`, bit for bit: the window is
the same samples (zeros before the stream started, as audio_tensor left-pads), each frame's power
spectrum is computed by the same code on the same samples, and the mel projection is redone for
the whole window in the offline path's shape (its BLAS rounding depends on that shape).

At another rate each chunk is resampled as it arrives (StreamingResampler: resample_poly of the
whole stream, bit for bit) and the window is kept at the model's rate. audio_tensor instead
resamples the newest `audio_window_s` of input on its own, which differs in two ways:
* it sees zeros before the window where the stream has its real past: the first ~10 output
  samples differ, which reaches log-mel frames 0 and 1 only;
* its output grid starts at the window's first input sample, the stream's at the stream's. They
  coincide when the samples received are a multiple of `down` (rate = 16 kHz * up / down: always
  for 8 kHz, every 3 samples at 48 kHz, every 441 at 44.1 kHz; 50 ms chunks are). Then frames 2
  onwards are bit for bit audio_tensor's. Otherwise the stream's window lies a fraction of an
  input sample later: interior frames differ by a few hundredths of a normalised unit, the
  reflect-padded edge frames by more in quiet bands (test_sensor_windows has the bounds).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.signal import upfirdn

from sentryfuse_ros.data.preprocess import (
    InvalidInput,
    audio_rate,
    check_float_audio,
    frame_power,
    log_mel_from_power,
    polyphase_filter,
    resample_ratio,
    stft_frames,
)
from sentryfuse_ros.data.ring_buffer import SlidingBuffer
from sentryfuse_ros.data.spec import INPUT_SPEC, InputSpec

# Power spectra cached for this many windows' worth of frames: enough for a few interleaved hop
# phases (window ends that are not a whole number of hops apart) to keep their frames.
_CACHED_WINDOWS = 4


class StreamingResampler:
    """preprocess.polyphase_resample of a stream, fed chunk by chunk: the outputs, joined, are
    resample_poly's of the whole stream bit for bit (the same scipy upfirdn sums).

    Output m is the filter centred on input m * down / up, resample_poly's grid for a signal
    starting at input 0, with zeros before it. `push` returns the outputs whose filter span has
    arrived; `tail` the ones after them up to resample_poly's length (ceil(inputs * up / down)),
    computed as if zeros followed, as resample_poly does at a signal's end.
    """

    def __init__(self, up: int, down: int):
        self._taps = polyphase_filter(up, down) * up  # resample_poly's gain for the zeros it inserts
        self._up, self._down, self._half = up, down, (len(self._taps) - 1) // 2
        self._history = np.zeros(-(-len(self._taps) // up) - 1)  # the inputs an output still to come needs
        self.inputs = 0
        self.outputs = 0

    def push(self, chunk: np.ndarray) -> np.ndarray:
        segment = np.concatenate([self._history, chunk])
        base = self.inputs - len(self._history)
        self.inputs += len(chunk)
        ready = max(self.outputs, (self.inputs * self._up - 1 - self._half) // self._down + 1)
        out = self._filter(segment, base, self.outputs, ready)
        self.outputs = ready
        self._history = segment[len(segment) - len(self._history) :]
        return out

    def tail(self) -> np.ndarray:
        stop = -(-self.inputs * self._up // self._down)
        newest = ((stop - 1) * self._down + self._half) // self._up  # the last output's newest input
        segment = np.concatenate([self._history, np.zeros(max(0, newest + 1 - self.inputs))])
        return self._filter(segment, self.inputs - len(self._history), self.outputs, stop)

    def _filter(self, segment: np.ndarray, base: int, start: int, stop: int) -> np.ndarray:
        """Outputs start..stop-1 from `segment`, the inputs from stream position `base` on."""
        # upfirdn(h, x)[n] = sum_k h[k] x_up[n * down - k]: output m's centre, m * down + half on
        # the upsampled grid, falls on an n * down once the filter is delayed by `delay` zeros.
        delay = (base * self._up - self._half) % self._down
        first = (start * self._down + self._half - base * self._up + delay) // self._down
        outputs = upfirdn(np.concatenate([np.zeros(delay), self._taps]), segment, self._up, self._down)
        return outputs[first : first + stop - start]


class StreamingLogMel:
    """preprocess.log_mel of a sliding window, with each frame's power spectrum computed once.

    Spectra are cached by the absolute stream position of the frame's first sample. Frames that
    touch the window's ends (reflect-padded there, so they change as the window slides) or
    samples that may still change are computed afresh every time.
    """

    def __init__(self, spec: InputSpec = INPUT_SPEC):
        self._spec = spec
        self._n_fft, frames = spec.audio_n_fft, spec.audio_frames
        self._offsets = spec.audio_hop * np.arange(frames) - self._n_fft // 2  # frame starts in the window
        # Slots are positions modulo a count coprime with the hop, so the frames of one window
        # (a hop apart) never share a slot.
        slots = _CACHED_WINDOWS * frames
        while math.gcd(slots, spec.audio_hop) != 1:
            slots += 1
        self._power = np.empty((slots, self._n_fft // 2 + 1), dtype=np.float32)
        self._positions = np.full(slots, np.iinfo(np.int64).min)  # frame start each slot holds

    def __call__(self, window: np.ndarray, start: int, stable: int) -> np.ndarray:
        """(M, F) log-mel of the float32 window whose first sample is stream sample `start`; its
        first `stable` samples will not change."""
        positions = start + self._offsets
        cacheable = (self._offsets >= 0) & (self._offsets + self._n_fft <= stable)
        slots = positions % len(self._positions)
        hit = cacheable & (self._positions[slots] == positions)
        power = np.empty((1, len(positions), self._power.shape[1]), dtype=np.float32)
        power[0, hit] = self._power[slots[hit]]
        todo = np.flatnonzero(~hit)
        power[0, todo] = frame_power(stft_frames(window[None], self._spec)[0, todo], self._spec)
        new = todo[cacheable[todo]]
        self._power[slots[new]] = power[0, new]
        self._positions[slots[new]] = positions[new]
        return np.ascontiguousarray(log_mel_from_power(power, self._spec)[0])


class AudioStream:
    """One audio stream (one sample rate) since it started: the newest window at the model's rate."""

    def __init__(self, sample_rate, spec: InputSpec = INPUT_SPEC):
        self.sample_rate = sample_rate
        self.received = 0  # samples at the stream's rate
        # The offline path is given the newest `keep` samples; a rejected chunk among them
        # rejects the window, as it would there.
        self._keep = int(round(spec.audio_window_s * sample_rate))
        # (received after the newest bad chunk, why): the reason names that chunk's peak where the
        # offline path would name the whole window's.
        self._rejected: tuple[int, str] | None = None
        self._rate_problem: str | None = None
        self._resampler: StreamingResampler | None = None
        try:
            ratio = resample_ratio(audio_rate(sample_rate), spec.audio_rate_hz)
            if ratio != 1:
                self._resampler = StreamingResampler(ratio.numerator, ratio.denominator)
        except InvalidInput as error:
            self._rate_problem = str(error)
        self._window = SlidingBuffer(spec.audio_window_samples, zero_filled=True)
        self._written = 0  # samples at the model's rate
        self._log_mel = StreamingLogMel(spec)

    @property
    def covered_s(self) -> float:
        """Seconds of the stream in the window (rate 0 covers nothing instead of dividing by it)."""
        return min(self.received, self._keep) / max(self.sample_rate, 1)

    def add(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float32)
        self.received += samples.size
        if samples.size == 0 or self._rate_problem:
            return
        try:
            check_float_audio(samples)
        except InvalidInput as error:
            self._rejected = (self.received, str(error))
            # Zeros keep NaN out of the resampler's history and out of cached spectra.
            samples = np.where(np.isfinite(samples), samples, np.float32(0.0))
        if self._resampler is not None:
            samples = self._resampler.push(samples).astype(np.float32)
        self._window.extend(samples)
        self._written += samples.size

    def tensor(self) -> torch.Tensor:
        """(M, F) log-mel of the newest window; InvalidInput for a window the offline path rejects."""
        if self._rate_problem:
            raise InvalidInput(self._rate_problem)
        if self._rejected and self._rejected[0] > self.received - self._keep:
            raise InvalidInput(self._rejected[1])
        window = self._window.view()
        tail = self._resampler.tail().astype(np.float32) if self._resampler is not None else window[:0]
        if tail.size:
            window = np.concatenate([window[tail.size :], tail])
        start = self._written + tail.size - len(window)
        return torch.from_numpy(self._log_mel(window, start, stable=len(window) - tail.size))
