"""Data: sources (synthetic, hub, local TSV), perturbations and datamodules."""
