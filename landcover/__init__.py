"""Sentinel-2 land-cover research pipeline: the logic behind the stage scripts.

Modules, in pipeline order: ``cli`` (overrides, logging, errors, stage reuse),
``files`` (safe writes), ``legend`` (CORINE classes and colours), ``aoi``
(area of interest), ``rasters`` (band discovery, merge, crop, GeoTIFF I/O),
``labels`` (ground truth on the scene grid), ``sampling`` (labelled points,
patches), ``segmentation`` (Felzenszwalb, segment types), ``features`` and
``splits`` (per-pixel features, split protocols), ``models`` (random forest
and the Keras networks), ``experiment`` (one classifier run), ``patch_data``
(patches cut on the fly), ``inference`` (whole-scene prediction),
``bigearth`` and ``transfer`` (BigEarthNet and transfer), ``evaluation``
(scores, tables), ``plots`` (figures), ``report`` (the study's report) and
``demo`` (the embedded demo data).
"""
