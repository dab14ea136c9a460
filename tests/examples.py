"""How many hypothesis examples a costly property test takes: a share of the profile's.

The profiles are registered in ``conftest.py`` (``HYPOTHESIS_PROFILE``); a test module
imports this only for a property whose examples cost about a second each.
"""

from hypothesis import settings


def share(fraction: float, **options) -> settings:
    """Settings with ``fraction`` of the loaded profile's examples (at least 2), and
    ``options`` (e.g. ``suppress_health_check``).

    >>> share(0.5).max_examples == max(2, round(settings.default.max_examples * 0.5))
    True
    """
    return settings(max_examples=max(2, round(settings.default.max_examples * fraction)),
                    **options)
