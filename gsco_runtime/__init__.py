"""GSCo runtime: hot-loaded specialists (MoED), retrieval (RAD) and an arbiter that decides."""
