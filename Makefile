# The two commands a newcomer needs are `make demo` and `make test`; both set up first.
VENV := .venv
PY := $(VENV)/bin/python
SENTRYFUSE := $(VENV)/bin/sentryfuse
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup test demo msgs clean

setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest

demo: setup
	$(SENTRYFUSE) info --strict

msgs: setup
	bash scripts/build_msgs.sh

clean:
	rm -rf build $(VENV)
