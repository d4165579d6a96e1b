# Catalyst: every set-up, run and test step. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(CURDIR)/$(VENV)/bin/python
BIN := $(CURDIR)/$(VENV)/bin
RUN_DIR := $(or $(CATALYST_RUN_DIR),$(CURDIR)/.run)
export PYTHON := $(PY)
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen
PROTOS := $(shell find proto -name '*.proto')

.PHONY: help setup system-deps venv proto kafka-jars tools prometheus k8s-config demo lint test test-unit test-integration up down status logs \
        runtime-up runtime-down topics demo seed bench bench-feed bench-import clean console-messages

help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: system-deps venv proto kafka-jars ## Install what the system and the demo run (idempotent)

system-deps: ## Install Debian packages that are missing (redis-server, Java 17, Maven, python3-venv)
	@bash deploy/system-deps.sh

venv: $(VENV)/.installed ## Create the Python virtualenv with pinned dependencies

$(VENV)/.installed: pyproject.toml
	@echo "[setup] creating Python virtualenv in $(VENV)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip setuptools
	@$(PY) -m pip install -q -e ".[dev]"
	@touch $@

proto: gen/.stamp ## Generate Python stubs from proto/ into gen/ (not committed)

gen/.stamp: $(PROTOS) $(VENV)/.installed
	@echo "[proto] generating stubs into gen/"
	@rm -rf gen && mkdir -p gen
	@$(PY) -m grpc_tools.protoc -Iproto --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	@find gen/catalyst -type d -exec touch {}/__init__.py \;
	@echo "$(CURDIR)/gen" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/catalyst-gen.pth"
	@touch $@

tools: venv ## What only the tests drive: promtool, kcat, protoc, Node.js, kubeconform, grpcurl (Go), k8s schemas
	@bash deploy/tools.sh

prometheus: ## Prometheus with Catalyst's rules, scraping `make up` (http://127.0.0.1:9090)
	@mkdir -p $(RUN_DIR)/prometheus && prometheus --config.file=deploy/prometheus/prometheus.local.yml \
	  --storage.tsdb.path=$(RUN_DIR)/prometheus/data --web.listen-address=127.0.0.1:9090

console-messages: venv ## After changing the console's texts: extract them and update the catalogues (then translate)
	@$(BIN)/pybabel extract -F services/console/babel.cfg --no-location --sort-output --project=catalyst-console \
	  --copyright-holder=Catalyst -o services/console/locales/messages.pot services/console 2>/dev/null
	@$(BIN)/pybabel update -i services/console/locales/messages.pot -d services/console/locales --no-fuzzy-matching \
	  --ignore-obsolete --width=120 2>/dev/null

k8s-config: venv ## Regenerate deploy/k8s/rules.yaml after editing deploy/config/*.yaml
	@$(PY) deploy/k8s/rules_configmap.py

kafka-jars: ## Fetch the Apache Kafka broker jars from Maven Central once
	@bash deploy/kafka/kafka.sh jars

lint: venv proto ## ruff, buf lint, and buf breaking against main
	@$(BIN)/ruff check services tests deploy bench
	@$(BIN)/buf lint proto
	@if git rev-parse --verify -q main >/dev/null && git ls-tree -d main proto >/dev/null 2>&1 && [ -n "$$(git ls-tree main proto)" ]; then \
	  $(BIN)/buf breaking proto --against '.git#branch=main,subdir=proto'; fi

runtime-up: setup ## Start Kafka and Redis (no Docker) and create the topics
	@bash deploy/redis/redis.sh start
	@bash deploy/kafka/kafka.sh start
	@$(PY) deploy/topics.py create

runtime-down: ## Stop Kafka and Redis
	@bash deploy/kafka/kafka.sh stop
	@bash deploy/redis/redis.sh stop

up: runtime-up ## Start the whole system locally (Kafka, Redis, services, the web console)
	@bash deploy/local/services.sh start
	@echo "[console] http://localhost:8080 : sign in as a simulated employee, programme owner or works council member (any employee id)"

seed: ## A sample company (200 people, 12 weeks) through the running feed API; prints its first ambassador's id
	@$(PY) -m services.demo.seed

down: ## Stop everything `make up` started
	@bash deploy/local/services.sh stop
	@$(MAKE) --no-print-directory runtime-down

status: ## Show what is running
	@bash deploy/redis/redis.sh status || true
	@bash deploy/kafka/kafka.sh status || true
	@bash deploy/local/services.sh status || true

logs: ## Show the last log lines of every process
	@for f in $(RUN_DIR)/*/logs/*.log $(RUN_DIR)/services/*.log; do [ -f "$$f" ] && { echo "== $$f"; tail -n 20 "$$f"; }; done; true

demo: ## MAIN JOB: fresh local system, a simulated company, live view, report in reports/
	@echo "[demo] starting from a fresh local state (resets .run/, keeps the jar cache)"
	@bash deploy/local/services.sh stop >/dev/null 2>&1 || true
	@bash deploy/kafka/kafka.sh stop >/dev/null 2>&1 || true
	@bash deploy/redis/redis.sh stop >/dev/null 2>&1 || true
	@rm -rf $(RUN_DIR)
	@$(MAKE) --no-print-directory up
	@$(PY) -m services.demo $(DEMO_ARGS)

test: setup tools lint ## Lint, then run all tests (the README test command); starts Kafka and Redis when not running and stops what it started
	@bash deploy/with-runtime.sh $(PY) -m pytest -q tests

test-unit: venv proto ## Unit tests only (no broker needed)
	@$(PY) -m pytest -q tests/unit

bench: setup ## Run the benchmarks and write a report under bench/results/
	@bash deploy/with-runtime.sh $(PY) -m bench.run

bench-feed: setup ## Import speed of the feed (acknowledged -> on Kafka); report in bench/results/feed-import.md
	@bash deploy/with-runtime.sh $(PY) -m bench.feed_ingest

bench-import: setup ## A generated history from file to final badges; report in bench/results/import.md
	@bash deploy/with-runtime.sh $(PY) -m bench.import_history

clean: down ## Stop everything and delete runtime state (keeps the jar cache)
	@rm -rf $(RUN_DIR) gen
