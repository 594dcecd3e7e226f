# The two commands a newcomer needs are `make demo` and `make test`; both set up first.
VENV := .venv
PY := $(VENV)/bin/python
SENTRYFUSE := $(VENV)/bin/sentryfuse
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup data test test-fast demo msgs colcon clean

setup:
	@bash scripts/setup.sh

# The benchmark cache lives in ~/.cache/sentryfuse (SENTRYFUSE_DATA_DIR), so a second clone reuses it.
data: setup
	$(SENTRYFUSE) data prepare

test: data
	$(PY) -m pytest

# Everything but the tests that start processes over DDS: under a minute.
test-fast: data
	$(PY) -m pytest -m "not slow"

demo: data
	$(SENTRYFUSE) demo

msgs: setup
	bash scripts/build_msgs.sh

# `colcon build` of this package in a scratch workspace against the venv's ROS 2 wheels.
colcon: setup
	bash scripts/colcon_on_wheels.sh

clean:
	rm -rf build $(VENV)
