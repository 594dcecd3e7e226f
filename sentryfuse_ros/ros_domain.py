"""A ROS domain of one's own, for the benches and the tests: they start nodes that must never hear
(or disturb) another system or test run on this machine."""

from __future__ import annotations

import os
import random

# 1..101: every DDS port of these domains stays below Linux's ephemeral port range (0 is the
# default domain, which other systems use).
DOMAIN_IDS = range(1, 102)


def fresh_domain_id() -> int:
    """A random domain id from DOMAIN_IDS other than the current $ROS_DOMAIN_ID."""
    current = os.environ.get("ROS_DOMAIN_ID", "0")
    return random.SystemRandom().choice([d for d in DOMAIN_IDS if str(d) != current])


def use_own_domain() -> int:
    """Point this process (and what it starts) at a fresh domain, discovery on loopback unless
    $ROS_AUTOMATIC_DISCOVERY_RANGE says otherwise; the domain id."""
    domain = fresh_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return domain
