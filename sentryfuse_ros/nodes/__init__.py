"""ROS 2 nodes (heartbeat_monitor, sensor_sim) and the helpers every SentryFuse node shares.

State machines are plain Python so they can be tested with a fake clock:
  liveness      alive/dead hysteresis, rate and age of one sensor stream
  stamps        header stamp arithmetic and the stamp sanity check
  battery       BatteryState normalisation and staleness
  power_level   percentage -> power level with hysteresis, and the pruning budget
  fault_schedule  the simulator's scripted faults (YAML)

Shared ROS helpers (what a new node reuses):
  params        ParamSpec: parameters declared, described and validated in one place
  lifecycle     SentryLifecycleNode base class (parameters, teardown) and run_node() for main()
  lifecycle_client  bounded service calls from another node: change_state, is_active, call_service
  power_policy  what each power level buys: prune ratio, prediction rate, trigger, shed modalities
  change_detector  has the scene changed since the last prediction (change-triggered inference)
  qos           sensor_qos(reliability), latched_state_qos()
  decode        Image / CompressedImage / Imu / AudioChunk -> numpy, validated (data.preprocess)
  encode        numpy -> Image / Imu / AudioChunk / BatteryState
  diagnostics   DiagnosticStatus builders for sensors and the battery

Per node: monitor_params / sim_params (each node's ParamSpecs and config), sim_sources (test
split or synthetic samples) and malformed (broken messages for fault injection).
"""

import os

# Preprocessing does small numpy matrix products per message; OpenBLAS would wake worker threads
# for each and leave them spinning, which on a 2-core robot computer cost more CPU than the
# model itself. Set before numpy is first imported; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
