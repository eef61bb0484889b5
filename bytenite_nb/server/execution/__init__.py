"""Running jobs: pipeline, data sources, app registry, executors."""
