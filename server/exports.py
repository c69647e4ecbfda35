"""The current net as a file for another tool (ConvNetJS, ONNX), and what the page says before
such a download: whether ConvNetJS computes exactly what the net computes and, when not, how
often it agrees, measured on test images. Runs in the worker thread (it runs the net)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.formats.convnetjs import (ConvNetJSError, convnetjs_agreement, export_convnetjs,
                                      export_status)
from engine.formats.onnx_export import INSTALL_HINT, OnnxExportError, export_onnx, onnx_available
from engine.formats.snapshot import dumps
from server.errors import ApiError
from server.views import first_of_each_class

AGREEMENT_PER_CLASS = 20        # test images per class an inexact export is measured on


def export_info(trainer) -> dict[str, Any]:
    """{"convnetjs": {"possible", "exact", "detail", "agreement"}, "onnx": {"available",
    "detail"}} for /api/state. agreement: None when exact, else {"images", "same_class",
    "max_abs_diff", "step"} measured now on the first test images of each class."""
    preprocess = trainer.normalization.to_dict()
    convnetjs = {**export_status(trainer.net.spec, preprocess), "agreement": None}
    if convnetjs["possible"] and not convnetjs["exact"]:
        test = trainer.dataset.test
        picked = first_of_each_class(test.labels, len(trainer.dataset.class_names),
                                     AGREEMENT_PER_CLASS)
        if picked:
            with np.errstate(all="ignore"):      # a diverged net's outputs say so themselves
                measured = convnetjs_agreement(trainer.net, preprocess, test.take(picked))
            convnetjs["agreement"] = {**measured, "step": trainer.step_count}
    available = onnx_available()
    return {"convnetjs": convnetjs,
            "onnx": {"available": available,
                     "detail": "opset 17; input 'pixels', RGB 0..255 (batch, 3, H, W)"
                               if available else INSTALL_HINT}}


def download(trainer, fmt: str) -> tuple[str, bytes, str, dict[str, str]]:
    """(file name, bytes, media type, extra headers) of the current net as "convnetjs"
    (X-ConvNetJS-Exact says whether ConvNetJS computes what the net computes) or "onnx";
    ApiError 422 for a net the format cannot hold, 501 without the onnx package."""
    net, step = trainer.net, trainer.step_count
    preprocess, classes = trainer.normalization.to_dict(), list(trainer.dataset.class_names)
    if fmt == "convnetjs":
        status = export_status(net.spec, preprocess)
        try:
            doc = export_convnetjs(net, preprocess, approximate=True, classes=classes)
        except ConvNetJSError as exc:
            raise ApiError(422, "not_exportable", str(exc)) from None
        headers = {"X-ConvNetJS-Exact": "true" if status["exact"] else "false"}
        return f"convnet-step{step}.convnetjs.json", dumps(doc), "application/json", headers
    if not onnx_available():
        raise ApiError(501, "onnx_missing", INSTALL_HINT)
    try:
        data = export_onnx(net, preprocess, classes)
    except OnnxExportError as exc:
        raise ApiError(422, "not_exportable", str(exc), layer=exc.layer) from None
    return f"convnet-step{step}.onnx", data, "application/octet-stream", {}
