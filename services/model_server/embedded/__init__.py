"""The embedded default model: a MiniLM sentence encoder with small committed heads, CPU-sized."""
