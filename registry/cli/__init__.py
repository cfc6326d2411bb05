"""`gsco-registry`: the central team's command line."""
