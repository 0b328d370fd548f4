"""Acceptance checks written from the protocol document alone (no project imports)."""
