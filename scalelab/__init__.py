"""scalelab: the command-line root that ties model, store, sweeps, fitting and dashboards together."""
