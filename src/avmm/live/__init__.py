"""The live runtime: Binance market data (``feed``: connections, the synced depth book, health),
its recording (``record``), the venue's URLs and timers (``config``: ``[venue]``).

Importing the package loads nothing heavy; ``feed`` needs the ``live`` extra (picows, aiohttp,
uvloop)."""
