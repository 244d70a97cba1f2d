"""asv suite: the user-visible compile cost (DESIGN.md §2), measured in fresh processes.

The wall time of ``python -c "import fastnmf, numpy as np; fastnmf.nmf(np.random.rand(100,100), 5)"``
with Numba's on-disk cache already filled (warm) and with an empty cache directory (cold).
"""

from .common import first_call_seconds


class FirstCall:
    timeout = 900

    def track_first_call_warm_cache(self):
        return first_call_seconds(cold=False)

    track_first_call_warm_cache.unit = "seconds"

    def track_first_call_cold_cache(self):
        return first_call_seconds(cold=True)

    track_first_call_cold_cache.unit = "seconds"
