"""The rules between HTTP and storage/execution: jobs, auth, events."""
