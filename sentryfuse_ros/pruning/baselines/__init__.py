"""Zero-shot pruning baselines SentryGate is compared against, one method per module.

All of them score heads and FFN channels and turn the scores into a plan with
`plan_from_scores`, like SentryGate, so they differ only in their scores (and, for Kwon et al.
and FLAP, in the output scales or bias corrections they attach to the same plan).
"""
