"""avmm: a low-latency Avellaneda-Stoikov market-making engine."""

__version__ = "0.1.0"
