"""The rules between HTTP and storage/execution: jobs (`jobs.JobService`, `runner.Runner`),
templates, events (`broker`), API keys and tokens (`auth`), Developer API lookups. Never
imports HTTP: refusals are `bytenite_nb.server.errors` kinds."""
