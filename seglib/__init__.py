"""seglib: the tested library behind the book "Semantic segmentation of street scenes".

Modules (import the one you need), listed from the label table up: a module imports only modules listed above it
(``tests/test_architecture.py`` checks it; the README's "Architecture" section gives the layers). They run on any
Keras backend (TensorFlow, JAX, PyTorch: ``KERAS_BACKEND``) and import TensorFlow only when a TensorFlow-only
function runs (``tf.data``, TFRecords, export, the web app's predictor; see :mod:`seglib.backends`):

* :mod:`seglib.labels`        - the official Cityscapes label table and every lookup and palette derived from it
* :mod:`seglib.safeio`        - writing files safely: atomic replace, folder markers, ledgers, locks
* :mod:`seglib.backends`      - which Keras backend runs, and what needs TensorFlow
* :mod:`seglib.lifetime`      - child processes that die with the process that started them
* :mod:`seglib.masks`         - the four mask formats, 34 labels -> 8 categories, the nearest-neighbour mask resize
* :mod:`seglib.cityscapes`    - the folder layout
* :mod:`seglib.metrics`       - confusion matrix, IoU, Dice, and the official Cityscapes category IoU (numpy)
* :mod:`seglib.modelio`       - the model's contract: image -> model input, output -> categories -> full size
* :mod:`seglib.viz`           - colourised masks, overlays, legends, confusion heatmaps
* :mod:`seglib.profiles`      - the run profiles ``ci``, ``reference``, ``colab``, ``full``
* :mod:`seglib.synthetic`     - license-clean street scenes generated in the Cityscapes layout
* :mod:`seglib.datasets`      - which dataset is used (real or generated), the data and runs folders, trained models
* :mod:`seglib.augment`       - image and mask augmented together: albumentations or Keras's preprocessing layers
* :mod:`seglib.prepare`       - category masks and downscaled copies of a dataset
* :mod:`seglib.models`        - U-Net, simple U-Net, FCN-8 on VGG16, U-Net on pretrained encoders
* :mod:`seglib.losses`        - cross-entropy and dice losses that skip IGNORE (import before loading a saved model)
* :mod:`seglib.keras_metrics` - streaming Keras metrics mirroring :mod:`seglib.metrics` (import before loading)
* :mod:`seglib.features`      - classical per-pixel filter features and a logistic-regression baseline
* :mod:`seglib.notebook`      - a chapter's first cell: the run profile (``colab`` on a GPU), Drive advice, measured times
* :mod:`seglib.data`          - tf.data, a Keras PyDataset and TFRecords, all giving the same batches
* :mod:`seglib.bench`         - timing helpers shared by ``benchmarks/`` and the chapters
* :mod:`seglib.modern`        - DeepLabV3+ and SegFormer from keras-hub, an FPN on EfficientNet; Cityscapes presets
* :mod:`seglib.results`       - results files (schema, checks), spreads over seeds, outcome sentences from numbers
* :mod:`seglib.train`         - fitting by run profile, saved runs, evaluation at full size
* :mod:`seglib.predict`       - the one prediction path: image bytes -> category mask (notebooks, web app, endpoint)
* :mod:`seglib.experiments`   - the book's experiments: contenders, seeds, runs shared between chapters
* :mod:`seglib.export`        - SavedModel and TFLite exports run by LiteRT, compared with the Keras model
* :mod:`seglib.webapp`        - the Flask web app (``app.py`` at the repository root exposes it for gunicorn)
* :mod:`seglib.backend_probe` - each of the book's tools tried on each Keras backend
"""

__version__ = "0.1.0"
