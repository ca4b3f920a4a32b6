"""The backtester: a simulated venue and the strategy core in one compiled loop.

* ``config``     -- the ``[backtest]`` section: latency, fees, contract, queue model, market
* ``state``      -- the venue's record dtypes and ring sizes (allocated once)
* ``queue``      -- queue position of our resting orders (L1 and L2 models)
* ``latency``    -- the latency table and the request / response rings
* ``accounting`` -- fills into position, cash, fees, PnL; markouts; equity samples; spot
  balances (what the venue holds for our orders); funding payments
* ``market``     -- spot or perpetual (from the config or the data); the balances at the start, the
  funding series; the accounting figures of the summary (balances, funding, margin)
* ``exchange``   -- matching: market data at exchange time, our requests on arrival
* ``loop``       -- ``run_chunk``: the one compiled loop merging five time-ordered streams
* ``runner``     -- ``run_backtest`` / ``Backtester``: allocate once, stream chunks, aggregate
* ``metrics``    -- summary figures (PnL, Sharpe/Sortino, drawdown, markouts, inventory)
* ``report``     -- charts: HTML (plotly) or PNG (matplotlib), extra ``avmm[report]``
* ``export``     -- ``--fills`` / ``--equity`` files (Parquet or CSV), streamed
* ``session``    -- the built-in default session
"""
