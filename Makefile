# The two Quickstart commands; each installs what it needs into .venv first.
.PHONY: demo test setup lint

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/seq2seqkit train g2p --output runs/g2p-demo-$$(date +%Y%m%d-%H%M%S)

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check src tests bench scripts
	.venv/bin/ruff format --check src tests bench scripts
	.venv/bin/mypy src bench
