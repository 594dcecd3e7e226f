"""Training SentryAttend: curriculum, optimiser, loop, evaluation and the `sentryfuse train` command."""
