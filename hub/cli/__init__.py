"""`gsco-hub`: the hub's command line (case library, diagnosis, evaluation, federation)."""
