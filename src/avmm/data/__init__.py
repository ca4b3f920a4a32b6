"""Market data: exchange formats in, one columnar event store (Parquet) out.

Modules:

* ``store``           -- write / read the Parquet event store (``write_events``, ``iter_columns``, ...)
* ``synth``           -- deterministic synthetic sessions (the built-in default session)
* ``binance_ws``      -- Binance websocket captures (``<local_ts_ns> <JSON>`` lines, gzip)
* ``binance_archive`` -- Binance public data archives (daily zip CSVs)
* ``fetch``           -- download those archives with checksum verification and resume
* ``tardis``          -- tardis.dev CSV (quotes, trades, incremental_book_L2, book_snapshot_25)
* ``lobster``         -- LOBSTER message + orderbook file pairs
* ``convert``         -- format detection, the conversion pipeline and its summary
* ``inspect``         -- statistics of a store (``avmm data inspect``)
* ``common``          -- counters, reorder window, k-way merge, robust numeric columns
"""
