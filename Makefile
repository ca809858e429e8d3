# netscope: `make run` (install what is missing, then start the TUI), `make setup`, `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.netscope-installed

.PHONY: setup system test-system run test lint screenshots dashboards soak bench clean

setup: $(STAMP)

# System packages: checked every time (a cheap dpkg query), installed only when missing.
system:
	@scripts/setup-system.sh

# The tests also build bench/loadgen.c, the storm tests' sendmmsg flooder, run a real Prometheus
# against `netscope export` (promtool checks the alert rules) and verify the systemd unit.
test-system:
	@scripts/setup-system.sh gcc libc6-dev prometheus systemd

# /usr/bin/python3 with system site-packages: BCC's `bcc` module comes from python3-bpfcc.
$(VENV)/bin/python: | system
	/usr/bin/python3 -m venv --system-site-packages $(VENV)

$(STAMP): $(VENV)/bin/python pyproject.toml | system
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

run: setup
	$(VENV)/bin/netscope

test: setup test-system
	$(PY) -m pytest -q --durations=15 tests

lint: setup
	$(VENV)/bin/ruff check netscope tests scripts bench harness
	$(VENV)/bin/ruff format --check netscope tests scripts bench harness
	$(VENV)/bin/mypy

screenshots: setup
	$(PY) scripts/screenshots.py

# dashboards/netscope.json (Grafana) and dashboards/alerts.yml (Prometheus rules), from one description.
dashboards: setup
	$(PY) scripts/dashboards.py

# The TUI for 10 minutes at 1 s with traffic: RSS, fds and threads stay flat (`make test` soaks 15 s).
soak: setup test-system
	NETSCOPE_SOAK_S=600 $(PY) -m pytest -q tests/kernel/test_soak.py

# What netscope costs the box (not part of `make test`): bcc's tools are the peer rows.
bench: setup
	@scripts/setup-system.sh gcc libc6-dev bpfcc-tools
	$(PY) bench/bench.py

clean:
	rm -rf $(VENV) build *.egg-info
