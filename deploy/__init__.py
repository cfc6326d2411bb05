"""Deployment: the one-machine demo's scripts and code. Nothing of ours imports it but tests and bench."""
