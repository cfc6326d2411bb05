"""RAD: retrieval of similar library cases with each specialist's embedding (FAISS)."""
