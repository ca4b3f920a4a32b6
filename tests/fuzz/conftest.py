"""Hypothesis profiles for the fuzz targets: fixed and deterministic (``derandomize``, no example
database), so a run is the same on every machine.

* ``ci`` (the default): a few seconds a reader, in the default test suite;
* ``fuzz``: many more examples, for ``make fuzz`` (``HYPOTHESIS_PROFILE=fuzz``), bounded in time by
  the example count (``FUZZ_EXAMPLES`` overrides it).

No Hypothesis deadline (timing varies with the machine and the first example compiles numba
kernels); a hang is caught by ``tests.fuzz.hostile.time_limit`` instead, a hard per-example limit.
The fuzz targets take their profile with ``@fuzz_settings`` (``tests.fuzz.hostile``): the other
property tests of the suite keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
}
settings.register_profile("ci", max_examples=int(os.environ.get("FUZZ_EXAMPLES", 25)), **_COMMON)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", 1500)), **_COMMON)
