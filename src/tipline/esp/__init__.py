"""The partner API for tech companies (ESPs): CyberTipline-compatible report ingestion."""
