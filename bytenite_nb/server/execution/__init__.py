"""Running apps: one job's pipeline (`pipeline`), its files (`chunks`), data sources, secrets,
the app registry and where processes run (`executors`). Knows nothing of HTTP, storage or the
job service: the runner hands it a `pipeline.PipelineSpec` and observes the run."""
