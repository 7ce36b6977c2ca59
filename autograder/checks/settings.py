"""The hypothesis profile for grading: derandomized, no example database, no deadline, no explain phase (its
text never reaches the student: a check's own message does), shrinking as the config says."""
from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

from autograder.config import Config

PROFILE = "autograder-grading"


def load(config: Config) -> None:
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if config.shrink else [])
    settings.register_profile(
        PROFILE, derandomize=True, database=None, deadline=None, max_examples=config.max_examples,
        suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False, phases=phases)
    settings.load_profile(PROFILE)
