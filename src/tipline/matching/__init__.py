"""Matching evidence against banks of known hashes: digests, PDQ, and the PDQ index."""
