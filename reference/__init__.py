"""Reference implementations of the course's assignments (trusted side only)."""
