"""Pricing: a price sensor or service read, the price policy's pure decisions, and its timer."""
