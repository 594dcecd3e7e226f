"""Message <-> numpy helpers shared by the nodes: round trips, and rejections with a reason."""

import array
import copy

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image

from sentryfuse.msg import AudioChunk
from sentryfuse_ros.data.preprocess import InvalidInput
from sentryfuse_ros.nodes import decode, encode

STAMP = Time(sec=5, nanosec=7)
IMAGE = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)


def test_image_round_trip_keeps_pixels_and_header():
    msg = encode.image_to_msg(IMAGE, STAMP, "cam")
    assert (msg.encoding, msg.step, msg.header.frame_id, msg.header.stamp) == ("mono8", 28, "cam", STAMP)
    np.testing.assert_allclose(decode.image_from_msg(msg), IMAGE / 255.0, atol=1e-6)
    rgb = encode.image_to_msg(np.stack([IMAGE] * 3, axis=2), STAMP, "cam")
    assert rgb.encoding == "rgb8" and rgb.step == 84
    np.testing.assert_allclose(decode.image_from_msg(rgb), IMAGE / 255.0, atol=1e-3)
    with pytest.raises(ValueError):
        encode.image_to_msg(IMAGE.astype(np.float32), STAMP, "cam")


def test_compressed_image_decodes_like_the_raw_one():
    ok, png = cv2.imencode(".png", IMAGE)
    assert ok
    msg = CompressedImage(format="png", data=png.tobytes())
    np.testing.assert_array_equal(decode.image_from_compressed_msg(msg), decode.image_from_msg(
        encode.image_to_msg(IMAGE, STAMP, "cam")))
    with pytest.raises(InvalidInput, match="does not decode"):
        decode.image_from_compressed_msg(CompressedImage(format="jpeg", data=b"not a jpeg"))
    with pytest.raises(InvalidInput, match="no data"):
        decode.image_from_compressed_msg(CompressedImage(format="jpeg"))


def test_imu_round_trip_and_rejections():
    sample = np.array([0.1, -0.2, 9.8, 0.01, 0.02, -0.03], dtype=np.float32)
    msg = encode.imu_to_msg(sample, STAMP, "imu")
    assert msg.orientation_covariance[0] == -1.0  # orientation unknown, per Imu.msg
    np.testing.assert_allclose(decode.imu_sample_from_msg(msg), sample)
    msg.angular_velocity.y = float("nan")
    with pytest.raises(InvalidInput, match="gyro_y"):
        decode.imu_sample_from_msg(msg)
    no_gyro = encode.imu_to_msg(sample, STAMP, "imu")
    no_gyro.angular_velocity_covariance[0] = -1.0
    with pytest.raises(InvalidInput, match="no angular velocity .* but gyro_x, gyro_y, gyro_z are used"):
        decode.imu_sample_from_msg(no_gyro)
    # An accelerometer-only IMU serves a task (and a liveness check) that uses only its accelerometer.
    no_gyro.angular_velocity.x = float("nan")  # not provided, so never read
    np.testing.assert_allclose(decode.imu_sample_from_msg(no_gyro, decode.ACCEL_AXES), [*sample[:3], 0, 0, 0])


def test_audio_round_trip_takes_channel_zero_and_checks_the_rate():
    samples = np.linspace(-1, 1, 800, dtype=np.float32)
    msg = encode.audio_to_msg(samples, 16000, STAMP, "mic")
    np.testing.assert_array_equal(decode.audio_from_msg(msg, 16000), samples)
    stereo = AudioChunk(sample_rate=16000, channels=2, samples=array.array("f", [0.1, 0.9, 0.2, 0.8]))
    np.testing.assert_allclose(decode.audio_from_msg(stereo), [0.1, 0.2])
    for bad, words in [(AudioChunk(sample_rate=16000, channels=2, samples=array.array("f", [0.1] * 3)), "multiple"),
                       (AudioChunk(sample_rate=0, channels=1, samples=array.array("f", [0.1])), "sample_rate is 0"),
                       (AudioChunk(sample_rate=16000, channels=0, samples=array.array("f", [0.1])), "channels is 0"),
                       (AudioChunk(sample_rate=8000, channels=1, samples=array.array("f", [0.1])), "8000")]:
        with pytest.raises(InvalidInput, match=words):
            decode.audio_from_msg(bad, 16000)


def test_battery_message_carries_the_value_verbatim():
    msg = encode.battery_to_msg(85.0, True, STAMP, "battery")
    assert msg.percentage == 85.0 and msg.present and msg.power_supply_status == msg.POWER_SUPPLY_STATUS_CHARGING
    assert np.isnan(msg.charge) and np.isnan(msg.capacity)


def test_audio_is_read_from_the_message_buffer_and_only_channel_zero_is_checked():
    mono = encode.audio_to_msg(np.linspace(-1, 1, 800, dtype=np.float32), 16000, STAMP, "mic")
    samples = decode.audio_from_msg(mono)
    assert np.shares_memory(samples, np.frombuffer(mono.samples, np.float32)) and not samples.flags.writeable
    stereo = AudioChunk(sample_rate=48000, channels=2, samples=array.array("f", [0.1, float("nan"), 0.2, 0.8] * 600))
    left = decode.audio_from_msg(stereo)  # a NaN in an unused channel does not cost the chunk
    assert left.flags.c_contiguous and left.shape == (1200,)
    np.testing.assert_array_equal(left, np.tile(np.float32([0.1, 0.2]), 600))
    stereo.samples[0] = float("inf")
    with pytest.raises(InvalidInput, match="NaN or Inf"):
        decode.audio_from_msg(stereo)


def test_imu_names_every_non_finite_channel():
    msg = encode.imu_to_msg(np.zeros(6, np.float32), STAMP, "imu")
    msg.linear_acceleration.x, msg.angular_velocity.z = float("inf"), float("nan")
    with pytest.raises(InvalidInput, match="non-finite accel_x, gyro_z$"):
        decode.imu_sample_from_msg(msg)


def test_a_frame_check_rejects_exactly_what_decoding_rejects():
    good = Image(height=6, width=8, encoding="32FC1", step=32, data=np.full((6, 8), 0.5, np.float32).tobytes())
    decode.check_image_msg(good)
    bad_step, nan = encode.image_to_msg(np.zeros((6, 8), np.uint8), Time(sec=1), "cam"), copy.deepcopy(good)
    bad_step.step = 3
    nan.data = np.full((6, 8), np.nan, np.float32).tobytes()
    for msg in (bad_step, nan):
        with pytest.raises(InvalidInput) as checked:
            decode.check_image_msg(msg)
        with pytest.raises(InvalidInput) as decoded:
            decode.image_from_msg(msg)
        assert str(checked.value) == str(decoded.value)
