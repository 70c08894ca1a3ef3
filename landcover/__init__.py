"""Sentinel-2 land-cover research pipeline: the logic behind the stage scripts.

Modules, in pipeline order: ``cli`` (overrides, logging), ``files`` (safe
writes), ``legend`` (CORINE classes and colours), ``aoi`` (area of interest),
``rasters`` (band discovery, merge, crop, GeoTIFF I/O), ``labels`` (ground
truth on the scene grid), ``sampling`` (labelled points, patches), ``plots``
(renders and figures), ``demo`` (the embedded demo data).
"""
