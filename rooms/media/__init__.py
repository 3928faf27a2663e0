"""The media plane: an encoded-passthrough SFU on aiortc.

Received encoded frames are handed to every subscriber as they are: nothing
on the forwarding path decodes or encodes (aiortc's relay helper would do
both, at ten times the CPU per subscriber).
"""
