"""The hypothesis profile for grading: derandomized, no example database, no deadline, no explain phase (its
text never reaches the student: a check's own message does), shrinking as the config says.

`@given` takes the default settings when a check module is imported, and pytest imports a module once per
process: a second grade in the same process under another profile (the Python API, a test suite) would
keep the first one's. So when the profile changes, the check modules imported under the old one are
dropped from `sys.modules`, and this grade's collection imports them afresh."""
from __future__ import annotations

import sys
from typing import Optional, Tuple

from hypothesis import HealthCheck, Phase, settings

from autograder.config import Config

PROFILE = "autograder-grading"
_loaded: Optional[Tuple[int, bool]] = None  # (max_examples, shrink) of the profile check modules were imported under


def load(config: Config) -> None:
    global _loaded
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if config.shrink else [])
    settings.register_profile(
        PROFILE, derandomize=True, database=None, deadline=None, max_examples=config.max_examples,
        suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False, phases=phases)
    settings.load_profile(PROFILE)
    key = (config.max_examples, config.shrink)
    if _loaded is not None and _loaded != key:
        for name in [n for n in list(sys.modules) if ".checks.test_" in n or n.startswith("checks.test_")]:
            del sys.modules[name]
    _loaded = key
