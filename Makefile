# The two commands a newcomer needs: `make demo` (main job) and `make test`.
# Both set everything up first (scripts/setup.sh is idempotent).
SHELL := /bin/bash
ENV := source scripts/env.sh &&

.PHONY: setup demo test lint bench

setup:
	bash scripts/setup.sh

demo: setup
	$(ENV) python -m trace_ros.demo

test: setup
	$(ENV) python -m pytest test

lint: setup
	$(ENV) python -m pytest test -m linter

bench: setup
	$(ENV) python scripts/bench_core.py
