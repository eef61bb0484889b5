"""Where processes run: fork server, subprocess, Dask."""
