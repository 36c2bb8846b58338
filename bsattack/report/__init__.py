"""Tables and figures built from cached per-image results (one module per table / figure)."""
