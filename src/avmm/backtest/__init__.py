"""Backtester: the strategy core inside one compiled event loop (see ``loop.py``)."""
