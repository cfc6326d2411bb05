"""The training loop and its parts (schedule, augmentation, callbacks, checkpoints, device)."""
