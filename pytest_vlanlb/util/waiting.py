"""Waiting for a condition, with tenacity (never a sleep loop)."""

from __future__ import annotations

from collections.abc import Callable

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    give_up: Callable[[], bool] = lambda: False,
) -> bool:
    """True as soon as `condition()` holds; False after `timeout` s or once `give_up()`."""
    result: bool = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda ok: not ok and not give_up()),
        retry_error_callback=lambda _state: False,
    )(condition)
    return result
