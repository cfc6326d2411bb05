"""Publishing a run's signed bundle to the registry."""
