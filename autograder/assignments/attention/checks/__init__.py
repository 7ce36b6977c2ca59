"""The attention assignment's checks: pytest modules, collected when `--submission` grades this assignment."""
