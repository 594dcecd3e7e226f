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


def test_a_sample_without_a_prediction_of_its_own_is_scored_by_the_one_in_force():
    """A change-triggered node that saw no change keeps its last prediction: it is what a robot
    acts on, so it is scored against the new sample's label, not left out."""
    score = RunningScore()
    score.on_truth(100, "3")
    score.on_prediction(150, "3")
    score.on_truth(200, "3")  # same label, no prediction of its own: the one in force is right
    score.on_truth(300, "5")  # no prediction either: the one in force ("3") is wrong
    score.on_truth(400, "1")
    assert score.scored == {100: True, 200: True, 300: False}
    assert score.scored_by == {100: 100, 200: 100, 300: 100}


def test_onset_delay_is_the_first_correct_prediction_of_each_whole_sample():
    from sentryfuse_ros.bench.sample_ledger import PlanUsed, SampleLedger

    plan = PlanUsed("camera@0.00", ("camera",), 0.0)
    ledger = SampleLedger(0, 10)
    ledger.on_truth(1_000_000_000, "3")
    ledger.on_prediction(1_050_000_000, "8", plan, received_ns=1_060_000_000)
    ledger.on_prediction(1_150_000_000, "3", plan, received_ns=1_160_000_000)  # first correct: 160 ms
    ledger.on_prediction(1_250_000_000, "3", plan, received_ns=1_260_000_000)
    ledger.on_truth(3_000_000_000, "4")
    ledger.on_prediction(3_100_000_000, "9", plan, received_ns=3_110_000_000)  # never correct
    ledger.on_truth(5_000_000_000, "7")  # still playing: not counted
    delays, never = ledger.onset_delays_ms(0, 6_000_000_000)
    assert delays == [160.0] and never == 1
    assert [s.predicted for s in ledger.scored_samples()] == ["3", "9"]
