"""Turning values into text for people and machines: plans, manifests, progress.

Renderers are deterministic (same input, same bytes) and never see secret values unless a
function's name says so (`*_secrets`).
"""
