"""The one retry policy of the Custom Vision clients (prediction and training): which answers are
retried, how long to wait (``Retry-After``, else exponential backoff with jitter), how often.

The SDK never retries a POST on its own (see the Custom Vision reference); both clients switch its
retries off and follow this policy instead.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["RetryPolicy", "retry_after_seconds", "is_retryable"]

_RETRY_TEXT = re.compile(r"retry after (\d+(?:\.\d+)?) second", re.IGNORECASE)


def retry_after_seconds(response: Any) -> float | None:
    """Seconds a throttled response asks to wait: the ``Retry-After`` header (seconds or an HTTP
    date), else the "retry after N second" text of Azure's 429 message; ``None`` when neither."""
    value = response.headers.get("Retry-After") if response is not None else None
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    match = _RETRY_TEXT.search(getattr(response, "text", "") or "")
    return float(match.group(1)) if match else None


def is_retryable(status: int) -> bool:
    """429 (throttled), 408 (timeout) and 5xx are worth another try; other answers are final."""
    return status in (429, 408) or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """How many retries and how long each wait."""

    max_retries: int = 8
    backoff_base: float = 0.5  # seconds; doubled each retry, with jitter
    backoff_max: float = 30.0
    retry_after_max: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: a random wait in [0.5, 1] x min(max, base x 2^attempt)."""
        return min(self.backoff_max, self.backoff_base * (2**attempt)) * (0.5 + 0.5 * random.random())

    def delay(self, attempt: int, response: Any = None, throttled: bool = False) -> float:
        """The wait before retry ``attempt``: what a throttled answer asks for (capped at
        ``retry_after_max``), else the backoff."""
        if throttled:
            asked = retry_after_seconds(response)
            if asked is not None:
                return min(asked, self.retry_after_max)
        return self.backoff(attempt)
