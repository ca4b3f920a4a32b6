"""Market data: exchange formats in, one columnar event store (Parquet) out.

* ``readers/``   -- one module per source format (Binance captures and archives, tardis.dev, LOBSTER)
* ``convert``    -- format detection, the conversion pipeline and its summary
* ``store``      -- write / read the Parquet event store (``write_events``, ``iter_columns``, ...)
* ``book``       -- quotes derived from the reconstructed depth book (compiled kernel)
* ``inspect``    -- statistics of a store (``avmm data inspect``)
* ``synth``      -- deterministic synthetic sessions (the built-in default session)
* ``fetch``      -- Binance archive downloads with checksum verification and resume
* ``issues``     -- counters of every skipped, repaired or noted record
* ``files``      -- opening sources: gzip salvage, zip members, read limits, prefetch threads
* ``columns``    -- robust numeric columns and row checks
* ``csv``        -- the CSV block loop with exact line numbers
* ``ordering``   -- the reorder window, the k-way merge, duplicate detection
* ``_fast``      -- whole-chunk NumPy helpers on raw event rows
"""
