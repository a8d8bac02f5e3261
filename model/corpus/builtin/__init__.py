"""The public-domain corpus shipped with scalelab; see PROVENANCE.md in this folder."""
