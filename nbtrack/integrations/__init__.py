"""Adapters at the edge, onto nbtrack's own API: the Keras callback and the `%load_ext nbtrack` extension.
A new adapter (Keras Tuner, Lightning, a W&B-compatible namespace) is one more module here."""
