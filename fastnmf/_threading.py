"""One context manager for the threads of a call: Numba kernels and BLAS together."""

import threading
from contextlib import contextmanager

import numba
from threadpoolctl import ThreadpoolController

from ._config import THREADSAFE_LAYER

# Without a thread-safe Numba layer, parallel kernels from two Python threads would
# corrupt each other's work queue: serialise whole calls instead.
_LAUNCH_LOCK = threading.RLock()
_controller = None


def blas_limits(n_threads):
    """BLAS thread limit as a context manager; the library scan is done once per process.

    Used with 1 around work that alternates BLAS calls with parallel Numba kernels:
    OpenBLAS's workers keep spinning after each call and would take the cores from the
    kernel that follows.
    """
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=n_threads, user_api="blas")


@contextmanager
def thread_limits(n_threads):
    """Run the body with ``n_threads`` Numba and BLAS threads (None: all cores).

    The previous settings are restored on exit, also when the body raises. Numba's
    thread count is thread-local, so concurrent calls with different limits do not
    interfere.
    """
    limit_blas = n_threads is not None
    if n_threads is None:
        n_threads = numba.config.NUMBA_NUM_THREADS
    previous = numba.get_num_threads()
    lock = _LAUNCH_LOCK if not THREADSAFE_LAYER else None
    if lock is not None:
        lock.acquire()
    try:
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
        if limit_blas:
            with blas_limits(n_threads):
                yield n_threads
        else:
            yield n_threads
    finally:
        numba.set_num_threads(previous)
        if lock is not None:
            lock.release()
