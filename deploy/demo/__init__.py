"""The one-machine demo: `make demo` (run.sh) and the local federation (`-m deploy.demo.federation`)."""
