# The two commands a newcomer needs are `make demo` and `make test`; both set up first.
VENV := .venv
PY := $(VENV)/bin/python
SENTRYFUSE := $(VENV)/bin/sentryfuse
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup data test demo msgs clean

setup:
	@bash scripts/setup.sh

# The benchmark cache lives in ~/.cache/sentryfuse (SENTRYFUSE_DATA_DIR), so a second clone reuses it.
data: setup
	$(SENTRYFUSE) data prepare

test: data
	$(PY) -m pytest

demo: data
	$(SENTRYFUSE) demo

msgs: setup
	bash scripts/build_msgs.sh

clean:
	rm -rf build $(VENV)
