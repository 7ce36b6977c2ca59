"""Repository-level pytest setup: offline, quiet, reproducible (applies to `pytest` in this repo)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hypothesis import settings  # noqa: E402

# CI runs derandomized (same examples every run); locally too unless HYPOTHESIS_PROFILE=dev.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=30)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
