"""Capture sources that feed a run: system metrics, printed output, the environment (git, packages, the
notebook), a Keras model's graph, and the interrupt watch. They know nothing of the run that uses them."""
