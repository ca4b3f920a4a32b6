"""One module per source format; each yields ``(events, lines, path)`` chunks in source order.

* ``binance_ws``      -- Binance websocket captures (``<local_ts_ns> <JSON>`` lines, gzip)
* ``binance_archive`` -- Binance public data archives (daily zip CSVs)
* ``tardis``          -- tardis.dev CSV (quotes, trades, incremental_book_L2, book_snapshot_N)
* ``lobster``         -- LOBSTER message + orderbook file pairs
"""
