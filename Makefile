# Everything runs on Debian's /usr/bin/python3: the interpreter Kamailio embeds, so the
# tests import kemi exactly as the proxy does.
PYTHON := /usr/bin/python3

.PHONY: deps run test unit bench bench-sip bench-abuse

deps:
	bash scripts/install-deps.sh

# The proxy with demo data on a private PostgreSQL, in the foreground; Ctrl-C stops it all.
# DEMO=0: an empty database stays empty (give it a PBX_STATE_DIR of its own).
run: deps
	$(PYTHON) -m kemi.stack run $(if $(filter 0 no,$(DEMO)),--no-demo,)

# The whole suite: unit tests, then Kamailio + PostgreSQL + SIPp end to end.
test: deps
	$(PYTHON) -m pytest

# Only the fast tests (no Kamailio, no database).
unit: deps
	$(PYTHON) -m pytest tests/test_decision.py tests/test_phone.py tests/test_adapter.py

# Benchmarks print figures; they are never timed tests.
bench: deps
	$(PYTHON) -m pytest benchmarks --benchmark-only --benchmark-columns=min,median,mean,ops -q -s

# SIPp performance: our proxy beside a native Kamailio reference and a stateless floor
# (results/ gets results.json, results.md, chart.png). QUICK=1 for the 2-minute version.
bench-sip: deps
	$(PYTHON) -m benchmarks.sip_bench $(if $(QUICK),--quick,)

# What password guessing and floods get out of the proxy and cost it (README, Security).
bench-abuse: deps
	$(PYTHON) -m benchmarks.abuse_bench

# The Docker stack end to end (README, Docker): starts dockerd and makes the base image when
# needed, builds both images, calls through the containers, then takes it all down. Not in
# `make test`: it needs the Docker packages and minutes of image building.
.PHONY: test-docker
test-docker: deps
	PBX_TEST_DOCKER=1 $(PYTHON) -m pytest tests/test_docker_e2e.py -s

# The Grafana dashboard's panels from a real Prometheus after a load run (README, Metrics).
.PHONY: metrics-chart
metrics-chart: deps
	$(PYTHON) -m benchmarks.metrics_chart
