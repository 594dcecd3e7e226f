"""rosbag2 bags of SentryFuse topics: `sentryfuse record` and `sentryfuse replay`.

Built on PyPI `rosbags` (pure Python; reads and writes rosbag2 with mcap or sqlite3 storage),
so no ROS 2 bag tooling has to be installed. Messages are stored and played as the serialized
CDR bytes that went over the wire: nothing is deserialized on the way through, except a header
stamp patched in place when a replay restamps (`bags/stamps.py`).

Modules: `types` (the typestore with our messages, Python classes by type name, the default
topics), `qos` (QoS between rclpy and bag metadata), `stamps` (header stamps inside CDR),
`errors` (BagError: a bad bag or argument, exit status 2), `record`, `replay` (the commands).
"""
