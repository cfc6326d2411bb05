"""The specialist bundle contract: card, preprocessing, signing, PHI scanning."""
