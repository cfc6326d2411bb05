"""MoED: every specialist of the task predicts, micro-batched across concurrent requests."""
