"""Test-suite configuration: Hypothesis profiles.

``ci`` (the default) is deterministic (``derandomize``), has no deadline (timings vary on shared
machines) and keeps no example database; ``dev`` explores more examples at random. Choose one
with ``HYPOTHESIS_PROFILE=dev pytest ...``. Tests that set ``max_examples`` themselves keep it.
"""

from __future__ import annotations

import os

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    settings = None

if settings is not None:
    settings.register_profile(
        "ci",
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        "dev",
        max_examples=200,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
