"""The hub's case library: reading, storing and digesting de-identified reference cases."""
