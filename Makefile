# composure: back up and restore whole Docker Compose stacks. `make help` lists the targets.
# Arguments are make variables, e.g. `make backup PROJECT=shop SERVICE=db DRY_RUN=1`.
SHELL := bash
TSX := node --import tsx
# The commands run as one bundled file each (dist/<name>.mjs, built by scripts/bundle.ts from
# scripts/ and the npm packages when a source changed): it starts in a third of the time of
# compiling the TypeScript on every run.
ENTRY_POINTS := backup restore verify list prune accept sync plan metrics cron schedule pin export import
BUNDLE := dist/.built
BUNDLED := node dist
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
DEMO_PROJECT ?= composure-demo
# Fixture images the integration tests use (built from packages, cached by recipe hash).
TEST_IMAGES ?= busybox postgres mariadb sqlite redis prometheus victoriametrics opensearch cassandra
# The images the demo stack runs (compose/demo/compose.yml).
DEMO_IMAGES ?= busybox postgres mariadb
export PROJECT SERVICE RUN VOLUME DRY_RUN FORCE NO_RESCUE CONFLICT CONFIG DESTINATION LOCK_TIMEOUT FROM INTO DEEP
export TIER METRICS_DIR CRON CRON_FILE CRON_LOG TAG NOTE CLEAN RESTORE_SECRETS FILE

.DEFAULT_GOAL := help
.PHONY: setup setup-demo setup-test prune accept pin unpin export import sync images-for-tests help install backup restore verify list plan images demo demo-down test typecheck test-unit test-integration bench metrics cron-install cron-remove schedule

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

# scripts/setup.sh: installs what is missing (Debian/Ubuntu packages, as root; otherwise it prints
# the command), starts dockerd when none answers, npm ci when stale, builds the images named.
setup: ## set this machine up: packages, dockerd, npm ci, pinned restic and rclone (built once), the test and demo images (as root; otherwise prints the command)
	@bash scripts/setup.sh restic rclone $(sort $(TEST_IMAGES) $(DEMO_IMAGES))

setup-demo:
	@bash scripts/setup.sh $(DEMO_IMAGES)

setup-test:
	@bash scripts/setup.sh restic rclone $(TEST_IMAGES)

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

install: $(BUNDLE) ## install the npm dependencies (npm ci) and bundle the commands (dist/)

$(BUNDLE): node_modules $(shell find scripts -name '*.ts' -o -name '*.java' 2>/dev/null)
	@$(TSX) scripts/bundle.ts $(ENTRY_POINTS)
	@touch $@

backup: $(BUNDLE) ## back up every service (PROJECT= SERVICE= TIER=critical|medium|low TAG=a,b NOTE="..." DRY_RUN=1)
	@$(BUNDLED)/backup.mjs

restore: $(BUNDLE) ## restore a run (RUN=latest|<id> SERVICE= VOLUME= FROM=remote INTO=<project> DRY_RUN=1 FORCE=1 NO_RESCUE=1 CONFLICT= CLEAN=1 RESTORE_SECRETS=1)
	@$(BUNDLED)/restore.mjs

verify: $(BUNDLE) ## check manifests, sizes, sha256 and archives (RUN=latest|<id>|all); DEEP=1 also runs a restore drill
	@$(BUNDLED)/verify.mjs

list: $(BUNDLE) ## list complete runs (FROM=remote TAG=a,b; ARGS=--json for scripts)
	@$(BUNDLED)/list.mjs $(ARGS)

prune: $(BUNDLE) ## apply the retention policies (FROM=local|remote|all DRY_RUN=1 prints keep/delete and why)
	@$(BUNDLED)/prune.mjs

accept: $(BUNDLE) ## accept a suspected data loss, so prune may delete the last good run before it (RUN=<id> and/or SERVICE=)
	@$(BUNDLED)/accept.mjs
pin: $(BUNDLE) ## pin a run: retention never deletes it (RUN=<id>|latest)
	@$(BUNDLED)/pin.mjs pin

unpin: $(BUNDLE) ## unpin a run pinned with make pin (RUN=<id>)
	@$(BUNDLED)/pin.mjs unpin

export: $(BUNDLE) ## write one run to one self-checking tar file, to carry it to another host (RUN=latest|<id> FILE=<path>)
	@$(BUNDLED)/export.mjs

import: $(BUNDLE) ## add the run in a make export file to this destination, every checksum checked first (FILE=<path>)
	@$(BUNDLED)/import.mjs

sync: $(BUNDLE) ## upload every complete local run missing on the remote
	@$(BUNDLED)/sync.mjs

plan: $(BUNDLE) ## show what a backup would do, service by service, with sizes; touches nothing
	@$(BUNDLED)/plan.mjs

metrics: $(BUNDLE) ## rewrite the node_exporter textfile(s) from the catalog (PROJECT= METRICS_DIR=)
	@$(BUNDLED)/metrics.mjs

cron-install: $(BUNDLE) ## write crontab entries from schedule: in composure.yml (CRON=user CRON_FILE= CRON_LOG= DRY_RUN=1)
	@$(BUNDLED)/cron.mjs install

cron-remove: $(BUNDLE) ## remove the crontab entries written by cron-install (CRON=user CRON_FILE=)
	@$(BUNDLED)/cron.mjs remove

schedule: $(BUNDLE) ## run the schedule in the foreground (node-cron, one job at a time; SIGTERM stops cleanly)
	@exec $(BUNDLED)/schedule.mjs

images: ## build the fixture images from packages (cached by recipe hash)
	@bash test/images/build.sh

demo: setup-demo $(BUNDLE) ## set up, start the demo stack, write sample data, back it up and verify it
	@bash compose/demo/demo.sh

demo-down: ## stop the demo stack and remove its volumes
	@$(COMPOSE) -p $(DEMO_PROJECT) -f compose/demo/compose.yml down -v

typecheck: node_modules ## type-check everything (tsc --noEmit)
	@npx tsc --noEmit -p .

test-unit: node_modules ## unit tests (no Docker)
	@node --import tsx --test test/unit/*.test.ts

test-integration: setup-test $(BUNDLE) ## integration tests on the real Docker engine (they run the bundled commands)
	@node --import tsx --test --test-concurrency=2 --test-timeout=2400000 test/integration/*.test.ts

test: setup-test typecheck test-unit test-integration ## set up, then typecheck + unit + integration tests

bench: $(BUNDLE) ## measure backup/restore against raw read and the classic recipe (bench/results.json)
	@$(TSX) bench/bench.ts

images-for-tests: ## build only the fixture images the integration tests use
	@bash test/images/build.sh $(TEST_IMAGES)
