"""Views of runs: the notebook dashboard (ipywidgets + bqplot), its static SVG snapshot, the console line."""
