"""Evaluation of specialists, vote, RAD, consensus and generalist on a labelled set."""
