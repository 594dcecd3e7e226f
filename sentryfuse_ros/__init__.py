"""SentryFuse: multimodal perception that stays accurate and cheap under sensor dropout and low power."""

import os

# DDS discovery stays on this machine unless the user opens it (README, "Robot networks").
# Set here, before any rclpy.init(), so every node, test and benchmark inherits it.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

__version__ = "0.1.0"
