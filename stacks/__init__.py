"""The stack layer: config schema, loading, and the wiring of components into one graph."""
