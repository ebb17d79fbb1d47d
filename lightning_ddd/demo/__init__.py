"""The bundled CPU demo: sklearn's digits, small networks and the paper's condition grid (needs torch)."""
