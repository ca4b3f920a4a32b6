"""The strategy core: compiled, runtime-agnostic, one copy of the quoting logic.

* ``state``      -- the core's memory: params / state / orders / actions records, ``CoreMemory``
* ``model``      -- A-S (finite and rolling horizon) and GLFT quote formulas
* ``estimators`` -- online volatility, order-arrival intensity (A, k), VWAP, micro-price
* ``ladder``     -- model depths to the target ladder (levels, sizes, limits, rounding)
* ``strategy``   -- the ``*_rec`` event handlers, requote triggers, order diff
* ``entry``      -- the ``*_at`` entry points by block address: the core's ABI for Python callers
* ``engine``     -- ``Engine``: the core driven from Python (paper, live, bench)
* ``config``     -- the strategy's config sections and ``to_params``
* ``quote``      -- one quote from fixed inputs (``avmm quote``)

The core imports only ``events``, ``errors`` and ``jit``: it never learns which runtime drives it.
"""
