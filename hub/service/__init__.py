"""`gsco-hub serve`: the clinicians' HTTP service around one warm GSCo runtime per process."""
