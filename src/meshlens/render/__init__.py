"""Renderings of compiled config for people: rows and summaries (no rich, no printing here).

Layer: L6. Imports: compiler, emit, model, diagnostics.
"""
