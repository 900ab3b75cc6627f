"""Data: images and registered pairs, normalization, masks, tiling into Zarr stores, splits,
prediction stores, the synthetic rock and torch datasets."""
