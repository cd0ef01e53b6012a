"""Proxy training: scale a spec down, train it briefly on reinforced data, score it zero-shot."""
