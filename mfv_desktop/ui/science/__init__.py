"""The science tabs: AIE heatmaps, layer sweep, the vector library, apply and analogy."""
