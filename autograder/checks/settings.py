"""The hypothesis profile for grading: derandomized, no example database, no deadline."""
from __future__ import annotations

from hypothesis import HealthCheck, settings

from autograder.config import Config

PROFILE = "autograder-grading"


def load(config: Config) -> None:
    settings.register_profile(
        PROFILE, derandomize=True, database=None, deadline=None, max_examples=config.max_examples,
        suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False)
    settings.load_profile(PROFILE)
