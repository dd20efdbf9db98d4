"""Sweeps on Ray Tune: ``entropy sweep CONFIG`` (many runs: settings x seeds) and ``--report DIR``.

- ``spec``: the sweep file (what to vary, how to search, the metric), checked before Ray starts.
- ``trial``: one trial = one ordinary run folder trained by ``entropy train``'s own code path.
- ``runner``: the Ray Tune driver (local Ray or ``--address``), resume after a killed driver.
- ``report``: the results table and plots, from the run folders alone (no Ray needed).
"""
