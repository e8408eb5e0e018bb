"""What the routes share: :class:`PredictionService` holds the settings, the sample index (built once at startup,
so a sample is chosen by id, never by a path made from user input), the lazily loaded predictor or the endpoint,
the slots that bound the images a worker holds at once, and the admission counter that bounds the prediction
requests a worker has taken on (the rest get a quick 503 with ``Retry-After``): ``MAX_WAITING_PREDICTIONS`` requests
beyond the slots (``SEGLIB_MAX_WAITING_PREDICTIONS``, default 6) wait for a slot or are still uploading, each given
``UPLOAD_TIMEOUT`` seconds to send its body (``SEGLIB_UPLOAD_TIMEOUT``, default 120; no single read may wait more
than ``UPLOAD_IDLE_TIMEOUT`` of it). The settings are :func:`~seglib.webapp.settings.default_config`'s."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

import flask
import numpy as np
from werkzeug.exceptions import ServiceUnavailable

from seglib import cityscapes, datasets, predict
from seglib.webapp.endpoint import EndpointError, _public_address, endpoint_predict
from seglib.webapp.settings import SAMPLE_SPLIT

__all__ = ["PredictionService", "UPLOAD_IDLE_TIMEOUT", "RETRY_AFTER_SECONDS"]

#: Seconds one read of an upload may wait for data (a client that stopped sending gets 408 sooner).
UPLOAD_IDLE_TIMEOUT = 30.0
#: The ``Retry-After`` of a 503 for a full worker: about what a few predictions take.
RETRY_AFTER_SECONDS = 2

_log = logging.getLogger(__name__)


def _sample_index(root: str | os.PathLike, limit: int) -> dict[str, Path]:
    """``{frame id: image path}`` of the first ``limit`` frames of the sample split."""
    return {frame.stem: frame.image_path for frame in cityscapes.list_frames(root, SAMPLE_SPLIT)[:limit]}


class PredictionService:
    """What the routes share: the samples, the settings, the (lazily loaded) predictor, the prediction slots and the
    admission counter (``slots`` <= ``MAX_CONCURRENT_PREDICTIONS`` requests hold a decoded image; ``admission``
    <= that plus ``SEGLIB_MAX_WAITING_PREDICTIONS`` prediction requests are taken on at all)."""

    def __init__(self, config: Mapping):
        self.config = config
        self.endpoint_url = config["ENDPOINT_URL"]
        root = config["SAMPLES_ROOT"] or datasets.samples_root()
        self.samples = _sample_index(root, config["MAX_SAMPLES"])
        self._predictor: predict.Predictor | None = None
        self._model_path: Path | None = None
        self._lock = threading.Lock()
        slots = config["MAX_CONCURRENT_PREDICTIONS"]
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ValueError(f"MAX_CONCURRENT_PREDICTIONS must be a positive integer, got {slots!r}")
        #: held from decoding an image until its answer is encoded: bounds the images a worker holds at once
        self.slots = threading.BoundedSemaphore(slots)
        waiting = config["MAX_WAITING_PREDICTIONS"]
        if isinstance(waiting, bool) or not isinstance(waiting, int) or waiting < 0:
            raise ValueError(f"MAX_WAITING_PREDICTIONS must be a non-negative integer, got {waiting!r}")
        #: prediction requests admitted at once: those in a slot, those waiting for one, those still uploading
        self.max_admitted = slots + waiting
        #: taken without blocking when a prediction request starts (:mod:`~seglib.webapp.views`), or a 503
        self.admission = threading.BoundedSemaphore(self.max_admitted)
        self.upload_timeout = float(config["UPLOAD_TIMEOUT"])
        self.upload_idle_timeout = min(UPLOAD_IDLE_TIMEOUT, self.upload_timeout)

    @property
    def mode(self) -> str:
        return "endpoint" if self.endpoint_url else "local"

    def predictor(self) -> predict.Predictor:
        with self._lock:
            if self._predictor is None:
                self._model_path = None
                try:
                    self._model_path = Path(self.config["MODEL_PATH"] or predict.default_model_path())
                    predictor = predict.Predictor(self._model_path, max_pixels=self.config["MAX_PIXELS"])
                except (FileNotFoundError, ValueError) as error:
                    # the path is the server's business: logged for its operator, not shown to the public
                    _log.error("no model loaded (%s): %s", self._model_path or "no model path", error)
                    raise ServiceUnavailable("no model loaded: this server cannot predict until its operator "
                                             "installs a model (the server's log says what is missing)") from error
                predictor.predict_array(np.zeros((*predictor.image_size, 3), np.uint8))  # trace the graph now, once
                self._predictor = predictor
                _log.info("loaded %s", self._model_path)
            return self._predictor

    def model_name(self) -> str:
        self.predictor()
        return f"{self._model_path.parent.name}/{self._model_path.name}"

    def predict(self, data: bytes) -> predict.Prediction:
        if self.mode == "local":
            return self.predictor().predict_bytes(data)
        image = predict.decode_image(data, self.config["MAX_PIXELS"])  # refuse bad uploads before the round trip
        categories = endpoint_predict(self.endpoint_url, self.config["ENDPOINT_KEY"], data,
                                      self.config["ENDPOINT_TIMEOUT"])
        if categories.shape != image.shape[:2]:
            raise EndpointError(f"the prediction endpoint {_public_address(self.endpoint_url)} returned a "
                                f"{categories.shape} mask for a {image.shape[:2]} image", 502)
        return predict.Prediction(image, categories)

    def sample_bytes(self, sample_id: str) -> bytes:
        path = self.samples.get(sample_id)
        if path is None:
            flask.abort(404, f"there is no sample {sample_id[:80]!r}; pick one of the {len(self.samples)} "
                             "sample ids offered on the page")
        return path.read_bytes()
