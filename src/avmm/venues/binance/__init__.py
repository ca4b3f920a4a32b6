"""Binance spot and USD-M futures: message structs (``messages``) and the local-book sequence
rules (``depth_sync``)."""
