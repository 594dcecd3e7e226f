"""`sentryfuse eval`: accuracy of every pruning method over modality subsets, ratios and seeds."""
