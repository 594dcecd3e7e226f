"""Tri-modal digits benchmark: sources, preparation, splits and the shared preprocessing."""
