"""sensor_sim's replay positions: recordings end on the sample's end and follow the clock."""

import numpy as np

from sentryfuse_ros.nodes.replay_timeline import audio_chunk_owner, audio_indices, imu_row, sample_at


def test_imu_rows_end_on_the_sample_end_and_rest_before_the_trajectory():
    rate, rows = 100.0, 200
    assert imu_row(0.001, rate, rows) == 199
    assert imu_row(0.0101, rate, rows) == 198
    assert imu_row(1.9995, rate, rows) == 0
    assert imu_row(3.0, rate, rows) == 0  # a 3 s sample of a 2 s trajectory rests first
    # Callbacks on a 100 Hz grid, slightly late, publish every row once and in order.
    times_to_end = 2.0 - (np.arange(200) * 0.01 + 0.0004)
    assert [imu_row(s, rate, rows) for s in times_to_end] == list(range(200))


def test_a_skipped_imu_callback_leaves_a_gap_instead_of_shifting_the_rest():
    times_to_end = [0.0504, 0.0404, 0.0204, 0.0104, 0.0004]  # the callback at 0.0304 never ran
    assert [imu_row(s, 100.0, 200) for s in times_to_end] == [194, 195, 197, 198, 199]


def test_audio_chunks_tile_the_clip_so_it_ends_on_the_sample_end():
    rate, size, clip = 16000, 800, 16000
    chunks = [audio_indices(0.05 * k, rate, size, clip) for k in range(20, -1, -1)]  # 1.0 s before the end .. the end
    last_second = np.concatenate(chunks[1:])
    assert np.array_equal(last_second, np.arange(clip))  # exactly the recorded clip, in order
    assert np.array_equal(chunks[0], np.arange(clip - size, clip))  # before it: the clip's own tail


def test_audio_shorter_clips_loop_with_their_end_on_the_sample_end():
    indices = audio_indices(0.0, 8000, 400, 300)
    assert len(indices) == 400 and indices[-1] == 299 and indices[-300] == 0 and indices[0] == 200


def test_a_chunk_published_at_a_boundary_belongs_to_the_sample_it_recorded():
    assert sample_at(3.999, 2.0, 5) == 6 and sample_at(4.0, 2.0, 5) == 7
    assert audio_chunk_owner(4.0003, 0.05, 2.0, 5) == 6  # covers 3.95..4.00: the previous sample
    assert audio_chunk_owner(4.0503, 0.05, 2.0, 5) == 7
