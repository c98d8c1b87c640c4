# composure: back up and restore whole Docker Compose stacks. `make help` lists the targets.
# Arguments are make variables, e.g. `make backup PROJECT=shop SERVICE=db DRY_RUN=1`.
SHELL := bash
TSX := node --import tsx
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
DEMO_PROJECT ?= composure-demo
# Fixture images the integration tests use (built from packages, cached by recipe hash).
TEST_IMAGES ?= busybox
export PROJECT SERVICE RUN VOLUME DRY_RUN FORCE NO_RESCUE CONFIG DESTINATION LOCK_TIMEOUT

.DEFAULT_GOAL := help
.PHONY: images-for-tests help install backup restore verify list plan images demo demo-down test typecheck test-unit test-integration bench

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

install: node_modules ## install the npm dependencies (npm ci)

backup: node_modules ## back up every service (PROJECT= SERVICE= DRY_RUN=1)
	@$(TSX) scripts/backup.ts

restore: node_modules ## restore a run (RUN=latest|<id> SERVICE= VOLUME= DRY_RUN=1 FORCE=1 NO_RESCUE=1)
	@$(TSX) scripts/restore.ts

verify: node_modules ## check manifests, sizes, sha256 and archive structure (RUN=latest|<id>|all)
	@$(TSX) scripts/verify.ts

list: node_modules ## list complete runs (add ARGS=--json for scripts)
	@$(TSX) scripts/list.ts $(ARGS)

plan: node_modules ## show what a backup would do, service by service, with sizes; touches nothing
	@$(TSX) scripts/plan.ts

images: ## build the fixture images from packages (cached by recipe hash)
	@bash test/images/build.sh

demo: node_modules ## start the demo stack, write sample data, back it up and verify it
	@bash compose/demo/demo.sh

demo-down: ## stop the demo stack and remove its volumes
	@$(COMPOSE) -p $(DEMO_PROJECT) -f compose/demo/compose.yml down -v

typecheck: node_modules ## type-check everything (tsc --noEmit)
	@npx tsc --noEmit -p .

test-unit: node_modules ## unit tests (no Docker)
	@node --import tsx --test test/unit/*.test.ts

test-integration: node_modules ## integration tests on the real Docker engine
	@bash test/images/build.sh $(TEST_IMAGES)
	@node --import tsx --test --test-concurrency=2 --test-timeout=900000 test/integration/*.test.ts

test: typecheck test-unit test-integration ## typecheck + unit + integration tests

bench: node_modules ## measure backup/restore against raw read and the classic recipe (bench/results.json)
	@$(TSX) bench/bench.ts

images-for-tests: ## build only the fixture images the integration tests use
	@bash test/images/build.sh $(TEST_IMAGES)
