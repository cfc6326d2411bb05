"""`gsco-hub study`: a reproducible study through the real CLIs, and its report."""
