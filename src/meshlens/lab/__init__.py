"""The only layer that runs processes: the real Envoy (validation now, the lab later).

Layer: L7.
"""
