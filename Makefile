# Every target bootstraps .venv on first use: a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

BENCH_STORE ?= .bench/bench-10M-seed1.parquet

.PHONY: run test test-slow check format bench bench-backtest bench-levels bench-data bench-peer bench-sweep bench-signals bench-emulator bench-ws bench-live bench-journal bench-paper-gc soak defaults-table signals-table fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

## run: the main job on the built-in default: a backtest on the built-in synthetic session
run: $(STAMP)
	$(BIN)/avmm backtest

## test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS)

## test-slow: the long end-to-end tests the default run leaves out (pytest marker slow: the live gateway's
## fault matrix against the emulator, each fault knob on its own on spot and USD-M; avmm bench live with a tuning)
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) -m slow

## soak: `avmm live` against `avmm emulate` (the real spot capture replayed at --speed 4, rounds of a fresh emulator
## and session) for SOAK_MINUTES (default 30) with a fault every 4 s (private and public knobs in turn), each round
## ending reconciled (no orphan order, every fill journaled once, positions equal); a one-screen summary
SOAK_MINUTES ?= 30
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --minutes $(SOAK_MINUTES) --json soak.json

## check: ruff lint and format check, the import-layer contracts, mypy
check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

## format: apply ruff's safe fixes and formatting
format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

## bench: quote-cycle benchmark, JSON written to bench.json
bench: $(STAMP)
	$(BIN)/avmm bench --json bench.json

## bench-backtest: backtest speed (loop ns/event, loop and end-to-end events/s; 5 runs) and peak RSS on a
## 10M-event synthetic L1 store (written once to BENCH_STORE, then reused), the pinned config benchmarks/configs/bench_l1.toml
bench-backtest: $(STAMP)
	$(BIN)/python benchmarks/backtest_bench.py --repeat 5 --store $(BENCH_STORE) --json backtest_bench.json

## bench-levels: the same with 5 levels a side (benchmarks/configs/bench_l5.toml)
bench-levels: $(STAMP)
	$(BIN)/python benchmarks/backtest_bench.py --repeat 5 --store $(BENCH_STORE) \
		--config benchmarks/configs/bench_l5.toml --json backtest_bench_l5.json

## bench-data: convert / read speed of the market-data layer
bench-data: $(STAMP)
	$(BIN)/python benchmarks/data_bench.py --json data_bench.json

## bench-peer: avmm vs hftbacktest 2.4.4 (own virtualenv .venv-peer) on the same stream and A-S market maker;
## 5 alternated runs each, JSON written to bench_peer.json
bench-peer: $(STAMP)
	$(BIN)/python benchmarks/peer/bench_peer.py --json bench_peer.json

## bench-sweep: a 16-point avmm sweep (quoting.refresh_s x backtest.maker_fee) against 16 sequential avmm backtest
## runs of the same points on 'avmm data synth --events 10000000' (written once to .bench/), in config x events/s;
## JSON written to bench_sweep.json
bench-sweep: $(STAMP)
	$(BIN)/python benchmarks/sweep_bench.py --json bench_sweep.json

## bench-signals: what VAMP + book imbalance cost in the backtest loop (ns/event, on BENCH_STORE, median of 5
## alternated runs) and on Engine.on_quote (p50 / p99); JSON written to bench_signals.json
bench-signals: $(STAMP)
	$(BIN)/python benchmarks/signals_bench.py --repeat 5 --store $(BENCH_STORE) --json bench_signals.json

## bench-ws: the websocket clients on loopback (picows, websockets, aiohttp; uvloop): ns per bookTicker frame
## received and decoded (flood) and receive latency p50 / p99 (paced); JSON written to bench_ws.json
bench-ws: $(STAMP)
	$(BIN)/python benchmarks/ws_clients.py --repeat 5 --json bench_ws.json

## bench-paper-gc: the garbage collector's pauses in `avmm paper --gc auto` vs `--gc manual` (gc.callbacks), on the
## emulator's replay of the real USD-M capture at --speed 20, 3 alternated runs each; JSON written to bench_paper_gc.json
bench-paper-gc: $(STAMP)
	$(BIN)/python benchmarks/paper_gc.py --runs 3 --json bench_paper_gc.json

## bench-emulator: frames/s that `avmm emulate --max` serves to one picows client (synthetic L1 session and the real
## spot / USD-M captures of ../shared/data), median of 3 runs; JSON written to bench_emulator.json
bench-emulator: $(STAMP)
	$(BIN)/python benchmarks/emulator_bench.py --repeat 3 --json bench_emulator.json

## bench-live: tick-to-order latency on loopback against the emulator (avmm bench live: per stage receive, decode,
## book, core, encode, send to the WebSocket API socket, a null client, the paper runtime, and the live runtime's
## frame -> order and fill -> requote with real orders at the emulator; p50 / p99 / p99.9), median of 3 runs, each
## also made busy-polling (with and without); JSON written to bench_live.json
bench-live: $(STAMP)
	$(BIN)/avmm bench live --repeat 3 --busy-poll --json bench_live.json

## bench-journal: what journaling costs the hot path: ns per Journal.response / answer / actions (2 places) /
## fill_seen and per log write from compiled code; ns per event of a Trader replay and the stage latencies of paper
## sessions on the emulator (60 s of the USD-M capture at --speed 10), without and with a journal; bench_journal.json
bench-journal: $(STAMP)
	$(BIN)/python benchmarks/journal_bench.py --json bench_journal.json

## defaults-table: the default config on every sample of ../shared/data and the built-in session (README table)
defaults-table: $(STAMP)
	$(BIN)/python benchmarks/defaults_table.py --json defaults_table.json

## signals-table: the default config against the README's user signal, VAMP over 5 levels and trade flow on every
## sample of ../shared/data and the built-in session (README table in "Signals")
signals-table: $(STAMP)
	$(BIN)/python benchmarks/signals_table.py --json signals_table.json

## fuzz: the readers' fuzz targets with many more examples (Hypothesis profile "fuzz"; a few minutes)
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) tests/fuzz

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .bench
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
