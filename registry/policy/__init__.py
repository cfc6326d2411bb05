"""Approval policy: which checks a bundle must pass before the central key signs it."""
