"""Random-network RTL regression (``hwgen regress`` / ``make regress``): gen -> case -> run."""
