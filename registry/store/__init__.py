"""The registry's storage: MLflow (models, versions, bundles) and its own SQL tables."""
