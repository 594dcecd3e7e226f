"""Running accuracy scores each sample by its last prediction, and never a sample still running."""

from sentryfuse_ros.scoring import RunningScore


def test_each_finished_sample_is_scored_by_its_last_prediction():
    score = RunningScore()
    score.on_truth(100, "3")
    score.on_prediction(110, "8")  # early, window still mixed
    score.on_prediction(190, "3")  # last one of sample 100: counts
    assert score.accuracy is None  # sample 100 not finished yet
    score.on_truth(200, "5")
    score.on_prediction(290, "6")
    score.on_truth(300, "1")
    assert score.scored == {100: True, 200: False}
    assert score.accuracy == 0.5
    assert score.summary() == "accuracy 50.0% (1/2 samples)"


def test_predictions_before_any_truth_and_out_of_order_truths_are_ignored():
    score = RunningScore()
    score.on_prediction(50, "1")
    score.on_truth(100, "1")
    score.on_truth(90, "2")  # older than the newest: ignored
    score.on_truth(200, "2")
    assert score.scored == {}  # sample 100 had no prediction
    assert score.summary() == "accuracy: no finished sample yet"
