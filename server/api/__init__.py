"""JSON APIs under /api, one module per area."""
