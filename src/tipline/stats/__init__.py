"""Statistics for supervisors: read-only figures, charts as server-rendered SVG, CSV."""
