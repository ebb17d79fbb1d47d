"""The study's HTML templates (the study page and the results page)."""
