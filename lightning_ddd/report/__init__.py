"""Figures, the per-sample table and the self-contained HTML report (matplotlib, Agg backend)."""
