"""Plotly figures, a live Dash app and a one-file HTML report of sweeps and their fits.

`dashboards.figures` draws, `dashboards.data` reads the store, `dashboards.fits` runs the
`fitting` package, `dashboards.app` serves and `dashboards.report` writes the report.
"""
