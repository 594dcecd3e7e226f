"""NetnsPair: a talker in the robot namespace is heard in the base namespace over the veth; with
the link down nothing crosses (no shared-memory path around it), while the robot side still
hears itself; with the link up again messages cross again. Skipped where namespaces cannot be
made (not root, no iproute2)."""

import sys
import time
from pathlib import Path

import pytest

from conftest import wait_for
from sentryfuse_ros.netns import BASE, ROBOT, NetnsPair, netns_unavailable

PEER = [sys.executable, str(Path(__file__).with_name("netns_peer.py"))]
DISCOVERY_S = 20.0  # two fresh interpreters with rclpy on two busy cores, then discovery
RECOVERY_S = 20.0
# A message that crossed just before the link went down may be printed a little later.
SETTLE_S = 1.0
QUIET_S = 2.0


@pytest.fixture
def pair():
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    with NetnsPair() as made:  # deletes the namespaces whatever the test does
        yield made


class Listener:
    """A listener peer and the message arrivals it printed."""

    def __init__(self, pair: NetnsPair, side: str, log_path: Path):
        self.log_path = log_path
        self.process = pair.popen(side, [*PEER, "listen"], log_path=log_path)

    def lines(self) -> list[str]:
        """Complete lines only: the peer may be writing the last one."""
        return self.log_path.read_text().split("\n")[:-1]

    def arrivals(self) -> list[float]:
        """Receipt times (time.monotonic) of the messages so far."""
        return [float(line.split()[1]) for line in self.lines() if line[:1].isdigit()]

    def ready_at(self) -> float:
        return next(float(line.split()[1]) for line in self.lines() if line.startswith("ready"))


@pytest.mark.slow  # three peer processes in two namespaces
def test_messages_cross_stop_while_link_down_and_cross_again(pair, tmp_path):
    pair.popen(ROBOT, [*PEER, "talk", "20"], log_path=tmp_path / "talker.log")
    base = Listener(pair, BASE, tmp_path / "base.log")
    robot = Listener(pair, ROBOT, tmp_path / "robot.log")
    assert wait_for(lambda: len(base.arrivals()) >= 5 and len(robot.arrivals()) >= 5, DISCOVERY_S), (
        base.lines()[-5:], robot.lines()[-5:], (tmp_path / "talker.log").read_text()[-2000:])
    print(f"across the veth: first message {base.arrivals()[0] - base.ready_at():.2f} s after the listener was ready")

    pair.link(False)
    time.sleep(SETTLE_S)
    heard_at_base, heard_in_robot = len(base.arrivals()), len(robot.arrivals())
    time.sleep(QUIET_S)
    assert len(base.arrivals()) == heard_at_base, "messages crossed a link that is down"
    assert len(robot.arrivals()) > heard_in_robot, "the robot side stopped hearing itself"

    pair.link(True)
    up_at = time.monotonic()
    assert wait_for(lambda: len(base.arrivals()) > heard_at_base, RECOVERY_S), base.lines()[-5:]
    print(f"link up again: first message across after {base.arrivals()[heard_at_base] - up_at:.2f} s")
    assert base.process.poll() is None and robot.process.poll() is None
