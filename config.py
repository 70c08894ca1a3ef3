"""Pipeline configuration: plain constants, read by every stage as ``config.NAME``.

The values below are the ``demo`` preset: they run the whole pipeline on the
embedded demo scene in minutes on 2 CPU cores. ``PRESETS["paper"]`` holds the
study's scale. Change a value by editing this file, or for one run only with
``python scene_prep.py --set N_POINTS=50000 --preset paper`` (presets are
applied first, then each ``--set`` in order; unknown keys are refused).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent

# ---------------------------------------------------------------- inputs ----
# Sentinel-2 product: a .SAFE folder (L1C or L2A), its IMG_DATA folder, a
# folder holding one GeoTIFF/JPEG2000 file per band (band name in the file
# name), a STAC item (.json file or URL), or a list of these (mosaicked in list
# order, the first valid pixel wins). The default is the embedded demo product
# (baseline 05.00, with its metadata, a cloud and an SCL), generated on first use.
SCENE_PATH = ROOT / "data" / "demo" / "S2A_MSIL2A_20180704T110621_N0500_R137_T30UWC_20230424T081431.SAFE"
# Bands to merge, in this order (names as in the file names: B02 .. B12, B8A).
BANDS = ["B02", "B03", "B04", "B08"]
# Target pixel size in metres (10, 20 or 60). Bands of another resolution are
# resampled to it (bilinear for reflectance).
RESOLUTION = 10
# CRS of the output grid for several products, e.g. "EPSG:32631"; None: the
# product's own (one product) or the UTM zone of the AOI's centre (several).
TARGET_CRS = None
# Write scene.tif in one radiometric convention whatever the processing
# baseline: int16, DN = 10000 x reflectance (the pre-04.00 convention, which
# BigEarthNet uses), nodata -32768, negative reflectance kept. The offsets come
# from MTD_MSIL2A.xml / MTD_MSIL1C.xml or the STAC item. False: stored values.
HARMONIZE = True
# DN offset of a folder of band files without product metadata (e.g. -1000 for
# baseline 04.00 and later); None: no offset (logged).
SCENE_OFFSET = None
# Cloud, shadow and snow mask: True (the product's own: L2A SCL, L1C
# MSK_CLASSI_B00.jp2 or MSK_CLOUDS_B00.gml), False (none), or "s2cloudless"
# (computed from the L1C bands; optional extra: pip install s2cloudless).
MASK_CLOUDS = True
# SCL classes masked: 0 no data, 1 saturated/defective, 3 cloud shadow,
# 8 and 9 cloud (medium, high probability), 10 thin cirrus, 11 snow.
MASK_SCL_CLASSES = [0, 1, 3, 8, 9, 10, 11]
# s2cloudless: cloud probability threshold (0..1) and dilation of the mask (m).
CLOUD_THRESHOLD = 0.4
CLOUD_DILATION_M = 120
# Largest masked share (0..1) of the AOI's pixels; a cloudier AOI is refused.
MAX_CLOUD_SHARE = 0.5
# Area of interest: (west, south, east, north) in degrees lon/lat (EPSG:4326),
# a path to a vector file (any CRS; the union of its polygons is used), or None
# for the whole scene. The study's AOI is STUDY_AOI; the demo uses a part of it.
STUDY_AOI = (-2.29, 51.51, -1.71, 51.61)
AOI = (-1.90, 51.535, -1.76, 51.59)
# Ground truth: a raster (CORINE, WorldCover, CLC+ Backbone ..., any CRS), a
# vector file of polygons with a class attribute (CORINE, OpenStreetMap
# "fclass", field polygons), or of labelled points (each point is a sample).
LABELS_PATH = ROOT / "data" / "demo" / "clc" / "U2018_CLC2018_V2020_20u1.gpkg"
# Vector ground truth only: the attribute with the class (matched ignoring case)
# and the layer to read (None: the file's first layer).
LABEL_ATTRIBUTE = "Code_18"
LABEL_LAYER = None
# How label values are read: "clc" (CLC grid codes 1..44 with 48/49/50/255/
# -128 as no label, three-digit CLC codes with 999 as no label, or CLC names),
# "worldcover" (ESA WorldCover 10..100), "clcplus" (CLC+ Backbone 1..11,
# 253-255 no label), "names" (every distinct value is a class of its own, e.g.
# OpenStreetMap "fclass"), or "auto" (recognised by the file name, the
# attribute or the embedded legend, never by the value range; logged).
LABEL_VOCAB = "auto"
# Least share (0..1) of the AOI's valid pixels that must carry a label. Sparse
# references (OpenStreetMap, field polygons) cover part of the AOI by nature;
# this refuses only a file that does not belong to the AOI.
MIN_LABEL_COVERAGE = 0.01
# An independent, finer reference that every model, the map and the ground
# truth itself are also scored against (how much does the coarse CORINE cap
# the measured accuracy?): a raster, polygons or labelled points, in its own
# vocabulary EVAL_LABEL_VOCAB (as LABEL_VOCAB; vector class attribute
# EVAL_LABEL_ATTRIBUTE, None: LABEL_ATTRIBUTE). Its codes must be the ground
# truth's, or are mapped to them by EVAL_CROSSWALK, a CSV with columns "from"
# and "to" (codes; unmapped codes are no label). None: no second reference.
# The demo sets it to the generator's 10 m land cover.
EVAL_LABELS_PATH = ROOT / "data" / "demo" / "truth_10m.tif"
EVAL_LABEL_VOCAB = "clc"
EVAL_LABEL_ATTRIBUTE = None
EVAL_CROSSWALK = None

# ------------------------------------------------------------- demo data ----
# Folder of the generated demo product and ground truth (git-ignored; it is
# regenerated when SCENE_PATH or LABELS_PATH points into it and it is missing).
DEMO_DIR = ROOT / "data" / "demo"
# Extent of the generated demo scene, lon/lat (west, south, east, north). The
# demo AOI lies inside it; the benchmark generates the whole STUDY_AOI instead.
DEMO_EXTENT = (-1.92, 51.525, -1.74, 51.60)

# ------------------------------------------------------------ scene_prep ----
# Output folder of scene_prep.py (cropped scene, labels, points, figures).
PREP_DIR = ROOT / "data" / "prepared"
# Number of labelled pixels sampled inside the AOI (study: 400,000).
N_POINTS = 20_000
# Points table format: "parquet" or "csv".
POINTS_FORMAT = "parquet"
# Also write the sampled patches as one compressed array (the study did; later
# stages cut patches from the scene on the fly and do not need it).
SAVE_PATCHES = False
# Patch side in pixels (odd) for SAVE_PATCHES and the default patch model.
PATCH_SIZE = 7
# Patch sizes swept by patches.py (odd; study: 3, 5, 7, 11, 21, 61). The demo
# sweeps the smallest and the study's best, within its time budget; add 5 with
# --set "PATCH_SIZES=[3, 5, 7]" (about 90 s more on 2 cores).
PATCH_SIZES = [3, 7]
# Run the Felzenszwalb segmentation (section below) in scene_prep.py as well
# and add the segment id and type to the points table.
SEGMENT = False
# Lower and upper percentiles (%) of the contrast stretch of the rendered PNGs.
STRETCH_PERCENTILES = (2, 98)

# ----------------------------------------------------------- segmentation ----
# Output folder of the segmentation (segment.py, or scene_prep.py with SEGMENT).
SEG_DIR = ROOT / "data" / "segments"
# Felzenszwalb parameters (scikit-image): scale (higher: larger segments),
# Gaussian pre-smoothing sigma in pixels, minimum segment size in pixels.
SEG_SCALE = 1200
SEG_SIGMA = 0.5
SEG_MIN_SIZE = 500
# Segmentation scales swept by the per-pixel experiment (at its largest training
# size): each entry a scale (with SEG_MIN_SIZE) or a [scale, min_size] pair. The
# MLP with segment type is trained for each; the report plots its accuracy
# against the median segment size. The demo sweeps the study's 1200 (a handful of
# regional segments) and field-sized segments (about 1.5 ha); [] : no sweep.
SEG_SCALES = [1200, [5, 50]]
# Input scaling, which decides how many segments a scale gives: "int16" (the
# study: band values as int16, divided by 32767 by scikit-image), "uint16"
# (/65535), "reflectance" (/10000) or "raw" (the values as they are).
SEG_INPUT = "int16"
# Band whose segment mean is ranked into segment types; None: mean of all bands.
SEG_TYPE_BAND = None
# Percentiles (%) of all segment means that separate the segment types 1..6.
SEG_PERCENTILES = (10, 25, 50, 75, 90)
# Largest working memory (GB) the segmentation may need (~300 bytes/pixel);
# larger scenes are refused with a message naming the size.
SEG_MAX_MEMORY_GB = 8.0
# segment.py also segments each scene of PREDICT_SCENES (whole, one task per
# scene; a whole 10980 x 10980 tile needs about 36 GB, see SEG_MAX_MEMORY_GB).
SEGMENT_SCENES = False

# ---------------------------------------------------- per-pixel experiment ----
# Output folder of the experiments' tables and figures.
REPORTS_DIR = ROOT / "reports"
# Spectral indices added to the bands as features: NDVI, SAVI, EVI, NDWI.
INDICES = ["NDVI"]
# Split protocols: "random" (the study: pixels drawn at random) and "spatial"
# (whole square blocks of BLOCK_SIZE pixels held out together).
SPLITS = ["random", "spatial"]
# Shares (0..1) of the points (random) or blocks (spatial) held out.
VAL_FRACTION = 0.2
TEST_FRACTION = 0.2
# Side of the spatial blocks in pixels (100 px = 1 km at 10 m).
BLOCK_SIZE = 100
# Repeats: every model under every split protocol is trained and tested this
# many times, each with its own model seed and split (random: a new shuffle;
# spatial: k-fold block cross-validation with k = REPEATS, so every block is
# tested exactly once). Per-run rows: runs.csv; results.csv: mean, sd, n_runs.
REPEATS = 3
# Bootstrap draws of the comparisons' 95 % intervals (blocks of BLOCK_SIZE
# resampled whole; reports/comparisons.csv).
BOOTSTRAP_SAMPLES = 2000
# Training-set sizes swept (study: 10,000 / 100,000 / 250,000); sizes larger
# than the training pool are capped at the pool.
TRAIN_SIZES = [10_000]
# Random forest: number of trees (study: 100).
RF_TREES = 100
# Forests run by test_segment.py: "labels" (a normal classifier, the baseline)
# and "onehot" (the study's code: a multi-output forest fitted on the one-hot
# label matrix, a pixel counted right only if its predicted row is exactly its
# one-hot label, so a pixel where no class gets a majority is wrong).
RF_TARGETS = ["labels", "onehot"]
# The study's MLP: SGD learning rate (momentum 0.9, Nesterov), learning-rate
# decay per step (Keras 2's SGD decay; study: 1e-6), epochs, batch size,
# early-stopping patience in epochs (on validation accuracy; None: no early
# stopping, every epoch trained and the last weights kept, as the study).
MLP_LEARNING_RATE = 0.01
MLP_DECAY = 0.0
MLP_EPOCHS = 200
MLP_BATCH_SIZE = 128
MLP_PATIENCE = 5
# TensorFlow op determinism: same seed, same network (slightly slower).
TF_DETERMINISTIC = True
# Keras dtype policy of the networks: "float32"; "mixed_bfloat16" (bfloat16
# compute, float32 weights and softmax: 1.3-2.7x faster CNN training on CPUs
# with AVX-512 BF16 or AMX and on Ampere or later GPUs, slower elsewhere; the
# README gives its measured accuracy); or "auto" (bfloat16 where it is fast).
PRECISION = "auto"

# -------------------------------------------------------------- patch CNN ----
# Folder of the trained models (.keras with a .json of metadata beside each).
MODELS_DIR = ROOT / "models"
# Classes with fewer sampled points than this are dropped (study: 100).
PATCH_MIN_SAMPLES = 100
# Convolution padding: "same" (the study's CNN) or "valid" (the same layers
# without padding; its head becomes convolutional, so a whole scene is
# predicted in one pass per tile, giving exactly the per-patch labels).
CNN_PADDING = "same"
# Kernel initializer of every layer: "glorot_uniform" (Keras's default) or
# "uniform" (the study's: uniform in -0.05..0.05).
CNN_INIT = "glorot_uniform"
# Adam learning rate (study: 1e-4), epochs, batch size, early-stopping
# patience (epochs, on validation accuracy; the best epoch's weights kept).
CNN_LEARNING_RATE = 1e-4
CNN_EPOCHS = 60
CNN_BATCH_SIZE = 512
CNN_PATIENCE = 3
# Epochs trained before early stopping watches the validation accuracy (Keras's
# start_from_epoch; those epochs are never kept as the best). At Adam 1e-4 and
# 8 batches an epoch a CNN can sit at chance for its first 5 epochs and would
# otherwise be stopped there. 0: from the first epoch (the study's code).
CNN_MIN_EPOCHS = 5
# Training points per model (None: the whole training part of the split).
CNN_TRAIN_SIZE = 4_000

# ------------------------------------------------------ whole-scene maps ----
# Model used by test_patches.py: a .keras path, or None for the best model of
# the patches.py sweep (highest validation accuracy).
PREDICT_MODEL = None
# Output folder of test_patches.py (one sub-folder per model).
PREDICT_DIR = ROOT / "data" / "predictions"
# Patches per predict call, and memory (MB) for the patches cut at once.
PREDICT_BATCH = 2048
PREDICT_TILE_MB = 256
# Also map the AOI with the per-pixel experiment's random forest and MLP-Pixel
# (run 1 of the mapped CNN's split, saved by test_segment.py), through the same
# path (a halo of 0), and draw the three maps side by side.
PIXEL_MAPS = True
# Also write the full class-probability stack (one band per class), as
# PROBABILITY_DTYPE: "uint8" (round(p x 255): 1 byte a value) or "float32".
WRITE_PROBABILITIES = False
PROBABILITY_DTYPE = "uint8"
# Other scenes to map instead of the training AOI: a list of products or STAC
# items (as SCENE_PATH's entries), each prepared with the model's bands and its
# training scene's harmonisation and cloud mask, in its own UTM zone, and
# mapped into PREDICT_DIR/<model>/<scene id>/ (Cloud-Optimised GeoTIFFs), with
# PREDICT_DIR/<model>/mosaic.vrt over all of them (in TARGET_CRS, None: the
# first scene's CRS). Finished scenes are stamped and skipped on a re-run.
# [] : the training AOI's scene.tif, scored against the ground truth.
PREDICT_SCENES = []
# Area of each scene in PREDICT_SCENES to map (as AOI); None: the whole product.
PREDICT_AOI = None

# ---------------------------------------------------- scaling out (Dask) ----
# Where test_patches.py predicts the map: None (in this process; Dask is not
# imported), "local" (a distributed.LocalCluster of DASK_WORKERS worker
# processes, one thread each) or the address of a running scheduler, e.g.
# "tcp://scheduler:8786" (dask-jobqueue on SLURM, Kubernetes); its workers must
# see MODELS_DIR and PREDICT_DIR at the same paths and run this environment.
SCHEDULER = None
DASK_WORKERS = 2
# Side (px) of the output chunks, each predicted by one task (halo: the patch radius).
PREDICT_CHUNK = 2048
# Scenes of PREDICT_SCENES whose chunks are queued on Dask at once (the stage's
# process holds each one's output files open until its last chunk is written).
PREDICT_SCENES_IN_FLIGHT = 2

# ------------------------------------------------------------ BigEarthNet ----
# The archive: a BigEarthNet-S2 v1.0 folder of patch folders, or a v2.0 (reBEN)
# root holding metadata.parquet and BigEarthNet-S2/. The default is the demo
# archive, generated on first use.
BIGEARTH_PATH = ROOT / "data" / "demo" / "bigearthnet"
# Cloud/shadow and snow lists of a v1 archive (None: the official CSV names
# beside BIGEARTH_PATH). v2 uses the flags in metadata.parquet.
BIGEARTH_CLOUD_LIST = None
BIGEARTH_SNOW_LIST = None
# DN offset added to the archive's values to reach the scene's convention
# (BigEarthNet v1 and v2 are stored as 10000 x reflectance: 0).
BIGEARTH_OFFSET = 0
# Output folder of read_bigearth.py (shards and manifest).
BIGEARTH_DIR = ROOT / "data" / "bigearth"
# Classes kept: "scene" (the AOI ground truth's classes, from PREP_DIR),
# "study" (the study's 16 classes) or a list of CLC codes.
BIGEARTH_CLASSES = "scene"
# Label policy: "first" (the patch's first kept label, as the study) or "multi".
BIGEARTH_LABELS = "first"
# Patches per shard, and the most patches kept (None: all).
BIGEARTH_SHARD_SIZE = 1000
BIGEARTH_MAX_PATCHES = None
# Training of the study's BigEarthNet CNN (Adam 5e-4): epochs, batch size,
# early-stopping patience; shares of patches held out for validation and test.
BE_LEARNING_RATE = 5e-4
BE_EPOCHS = 15
BE_BATCH_SIZE = 32
BE_PATIENCE = 4
BE_VAL_FRACTION = 0.2
BE_TEST_FRACTION = 0.2
# Transfer to the AOI: AOI training points for the new head (b), its epochs,
# and epochs of fine-tuning with the convolutions unfrozen (0: none).
TRANSFER_TRAIN_SIZE = 2_000
TRANSFER_EPOCHS = 30
TRANSFER_FINE_TUNE_EPOCHS = 0

# --------------------------------------------------------- reproducibility ----
# One seed drives the demo data, sampling, splits and training.
SEED = 42

# --------------------------------------------------------------- presets ----
# A preset is a set of overrides applied before --set. "demo" is what this file
# says; "paper" is the study's scale and training protocol, as its public code
# has it (run it on your own product and labels).
PRESETS = {
    "demo": {},
    "paper": {
        "AOI": STUDY_AOI,
        "N_POINTS": 400_000,
        "PATCH_SIZES": [3, 5, 7, 11, 21, 61],
        "TRAIN_SIZES": [10_000, 100_000, 250_000],
        "REPEATS": 5,
        "SEG_SCALES": [1200, [100, 500], [20, 50], [5, 50]],
        "PRECISION": "float32",
        # MLP: SGD 0.01, decay 1e-6, momentum 0.9, Nesterov, 75 epochs, batch 512, no early stopping
        "MLP_DECAY": 1e-6,
        "MLP_EPOCHS": 75,
        "MLP_BATCH_SIZE": 512,
        "MLP_PATIENCE": None,
        # CNN: uniform initializer, Adam 1e-4, batch 512, 75 epochs, early stopping (patience 10, best kept)
        "CNN_INIT": "uniform",
        "CNN_EPOCHS": 75,
        "CNN_BATCH_SIZE": 512,
        "CNN_PATIENCE": 10,
        "CNN_MIN_EPOCHS": 0,
        "CNN_TRAIN_SIZE": None,
        # classes with 100 or fewer points dropped
        "PATCH_MIN_SAMPLES": 101,
        "BE_EPOCHS": 100,
        "BE_PATIENCE": 10,
        "TRANSFER_TRAIN_SIZE": 20_000,
        "TRANSFER_FINE_TUNE_EPOCHS": 5,
    },
}
