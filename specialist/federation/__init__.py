"""What the hub's ServerApp and the sites' ClientApp share: the federation wire format."""
