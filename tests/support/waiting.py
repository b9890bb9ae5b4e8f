import time


def wait_until(predicate, timeout: float = 60, what: str = "the condition",
               interval: float = 0.2):
    """Poll `predicate` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not met within {timeout:.0f}s")
