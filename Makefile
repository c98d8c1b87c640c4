# composure: back up and restore whole Docker Compose stacks. `make help` lists the targets.
# Arguments are make variables, e.g. `make backup PROJECT=shop SERVICE=db DRY_RUN=1`.
SHELL := bash
TSX := node --import tsx
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
DEMO_PROJECT ?= composure-demo
# Fixture images the integration tests use (built from packages, cached by recipe hash).
TEST_IMAGES ?= busybox postgres mariadb sqlite redis prometheus victoriametrics opensearch cassandra
export PROJECT SERVICE RUN VOLUME DRY_RUN FORCE NO_RESCUE CONFLICT CONFIG DESTINATION LOCK_TIMEOUT FROM INTO DEEP
export TIER METRICS_DIR CRON CRON_FILE CRON_LOG

.DEFAULT_GOAL := help
.PHONY: prune sync images-for-tests help install backup restore verify list plan images demo demo-down test typecheck test-unit test-integration bench metrics cron-install cron-remove schedule

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

install: node_modules ## install the npm dependencies (npm ci)

backup: node_modules ## back up every service (PROJECT= SERVICE= TIER=critical|medium|low DRY_RUN=1)
	@$(TSX) scripts/backup.ts

restore: node_modules ## restore a run (RUN=latest|<id> SERVICE= VOLUME= FROM=remote INTO=<project> DRY_RUN=1 FORCE=1 NO_RESCUE=1 CONFLICT=)
	@$(TSX) scripts/restore.ts

verify: node_modules ## check manifests, sizes, sha256 and archives (RUN=latest|<id>|all); DEEP=1 also runs a restore drill
	@$(TSX) scripts/verify.ts

list: node_modules ## list complete runs (FROM=remote; ARGS=--json for scripts)
	@$(TSX) scripts/list.ts $(ARGS)

prune: node_modules ## apply the retention policies (FROM=local|remote|all DRY_RUN=1 prints keep/delete and why)
	@$(TSX) scripts/prune.ts

sync: node_modules ## upload every complete local run missing on the remote
	@$(TSX) scripts/sync.ts

plan: node_modules ## show what a backup would do, service by service, with sizes; touches nothing
	@$(TSX) scripts/plan.ts

metrics: node_modules ## rewrite the node_exporter textfile(s) from the catalog (PROJECT= METRICS_DIR=)
	@$(TSX) scripts/metrics.ts

cron-install: node_modules ## write crontab entries from schedule: in composure.yml (CRON=user CRON_FILE= CRON_LOG= DRY_RUN=1)
	@$(TSX) scripts/cron.ts install

cron-remove: node_modules ## remove the crontab entries written by cron-install (CRON=user CRON_FILE=)
	@$(TSX) scripts/cron.ts remove

schedule: node_modules ## run the schedule in the foreground (node-cron, one job at a time; SIGTERM stops cleanly)
	@exec $(TSX) scripts/schedule.ts

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
