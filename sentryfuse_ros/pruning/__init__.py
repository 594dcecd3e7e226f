"""Structured pruning of SentryAttend: plans, physical slicing, saliency, SentryGate and baselines."""
