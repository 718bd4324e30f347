# Tenant CRM API — developer entry points. GNU make.
#
#   make run    build the release binary, find or start PostgreSQL, serve on $(BIND_ADDR)
#   make test   build everything, run the Rust tests and the black-box API check
#
# PostgreSQL is found by scripts/ensure-postgres.sh: $$DATABASE_URL if set (as a
# superuser URL), else a server on 127.0.0.1:5432, else a private cluster under
# target/pgdata on 127.0.0.1:55432 (see docs/operations.md).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

CARGO ?= cargo
# Database and roles used by `make run`.
DB_NAME ?= crm
APP_ROLE ?= crm_app
WORKER_ROLE ?= crm_worker
BIND_ADDR ?= 0.0.0.0:8080
LOG_FORMAT ?= pretty
RUST_LOG ?= info

ENSURE_PG := scripts/ensure-postgres.sh
RELEASE_BIN := target/release/crm

.PHONY: help run test api-check check-layers lint fmt bench schema schema-check clean-db db-url db-stop

help: ## List the targets
	@printf 'Usage: make <target>\n\nTargets:\n'
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'
	@printf '\nVariables (make run): DB_NAME=%s APP_ROLE=%s WORKER_ROLE=%s BIND_ADDR=%s LOG_FORMAT=%s RUST_LOG=%s\n' \
		'$(DB_NAME)' '$(APP_ROLE)' '$(WORKER_ROLE)' '$(BIND_ADDR)' '$(LOG_FORMAT)' '$(RUST_LOG)'

run: ## Build the release binary, ensure PostgreSQL and database DB_NAME, serve on BIND_ADDR
	$(CARGO) build --release -p server
	@admin="$$($(ENSURE_PG))"; \
	pgbin="$$($(ENSURE_PG) --bin-dir)"; \
	if [[ "$$("$$pgbin/psql" -X -w -qtA -d "$$admin" -v ON_ERROR_STOP=1 \
		-c "SELECT 1 FROM pg_database WHERE datname = '$(DB_NAME)'")" != 1 ]]; then \
		echo "make run: creating database $(DB_NAME)" >&2; \
		"$$pgbin/psql" -X -w -q -d "$$admin" -v ON_ERROR_STOP=1 -c 'CREATE DATABASE "$(DB_NAME)"'; \
	fi; \
	migration_url="$$($(ENSURE_PG) --rewrite "$$admin" '$(DB_NAME)')"; \
	app_url="$$($(ENSURE_PG) --rewrite "$$admin" '$(DB_NAME)' '$(APP_ROLE)')"; \
	worker_url="$$($(ENSURE_PG) --rewrite "$$admin" '$(DB_NAME)' '$(WORKER_ROLE)')"; \
	echo "make run: serving on $(BIND_ADDR); DATABASE_URL=$$app_url WORKER_DATABASE_URL=$$worker_url" >&2; \
	echo "make run: create a tenant with:" >&2; \
	echo "  MIGRATION_DATABASE_URL=$$migration_url $(RELEASE_BIN) tenant create --name Acme" >&2; \
	exec env MIGRATION_DATABASE_URL="$$migration_url" DATABASE_URL="$$app_url" \
		WORKER_DATABASE_URL="$$worker_url" \
		BIND_ADDR='$(BIND_ADDR)' LOG_FORMAT='$(LOG_FORMAT)' RUST_LOG='$(RUST_LOG)' \
		$(RELEASE_BIN) serve

test: ## Layering and lint checks, the Rust tests (cargo test; PostgreSQL and Redis found or started), docs/schema.sql current, then scripts/api-check.sh
	@admin="$$($(ENSURE_PG))"; \
	export PG_ADMIN_URL="$$admin"; \
	CHROMIUM="$$(scripts/ensure-chromium.sh)"; export CHROMIUM; \
	TEST_REDIS_URL="$$(scripts/ensure-redis.sh)"; export TEST_REDIS_URL; \
	REDIS_SERVER="$$(scripts/ensure-redis.sh --server-bin)"; export REDIS_SERVER; \
	set -x; \
	$(MAKE) --no-print-directory check-layers lint; \
	$(CARGO) build --workspace --all-targets; \
	$(CARGO) test --workspace; \
	CRM_BIN=target/debug/crm scripts/schema.sh --check; \
	scripts/api-check.sh

check-layers: ## Dependencies point inward: domain has no I/O crates, the API knows no adapter
	@bad="$$($(CARGO) tree -p domain -e normal --prefix none | grep -E '^(tokio|sea-orm|sqlx|actix|awc|hyper|reqwest) ' || true)"; \
	if [[ -n "$$bad" ]]; then echo "check-layers: domain depends on I/O crates: $$bad" >&2; exit 1; fi; \
	for crate in domain ports app api-actix; do \
		if $(CARGO) tree -p "$$crate" -e normal --prefix none | grep -qE '^adapters-'; then \
			echo "check-layers: $$crate depends on an adapter" >&2; exit 1; fi; \
	done; \
	echo "check-layers: ok (domain has no tokio/sea-orm/actix; domain, ports, app and api-actix know no adapter)"

api-check: ## Only the black-box API contract check (migrations, curl, OpenAPI validator, generator and linter, schemathesis)
	@scripts/api-check.sh

lint: ## cargo fmt --check and clippy with warnings denied
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the workspace
	$(CARGO) fmt --all

schema: ## Regenerate docs/schema.sql (schema-only dump of a freshly migrated database)
	@scripts/schema.sh

schema-check: ## Fail if docs/schema.sql is not what the migrations produce (part of make test)
	@scripts/schema.sh --check

bench: ## Benchmarks on this machine (release build, loopback, bounded): see docs/benchmarks.md
	@scripts/bench.sh

clean-db: ## Drop leftover crm_test_% databases
	@admin="$$($(ENSURE_PG))"; \
	pgbin="$$($(ENSURE_PG) --bin-dir)"; \
	dbs="$$("$$pgbin/psql" -X -w -qtA -d "$$admin" -v ON_ERROR_STOP=1 \
		-c "SELECT datname FROM pg_database WHERE datname LIKE 'crm\_test\_%' ORDER BY 1")"; \
	if [[ -z "$$dbs" ]]; then echo "clean-db: no crm_test_% databases"; exit 0; fi; \
	while IFS= read -r db; do \
		echo "clean-db: dropping $$db"; \
		"$$pgbin/psql" -X -w -q -d "$$admin" -v ON_ERROR_STOP=1 \
			-c "DROP DATABASE IF EXISTS \"$$db\" WITH (FORCE)"; \
	done <<< "$$dbs"

db-url: ## Print the superuser URL of the PostgreSQL that make uses
	@$(ENSURE_PG)

db-stop: ## Stop the private cluster under target/pgdata, if running
	@$(ENSURE_PG) --stop
