"""Transform's analysis in this process (analysis.py, no TFX) and the Transform component
whose executor uses it when Beam would run here anyway (component.py, executor.py)."""
