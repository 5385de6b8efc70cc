"""hwgen.frontend: torch.nn.Module -> float IR (hwgen.ir.Graph).

``import_model(module, in_shape, name)`` traces with torch.fx and maps each node through the
per-op handler registry (``registry.handler``, handlers in ``handlers.py``); ``passes.py``
folds BatchNorm2d; ``reference.run_float`` interprets the IR in NumPy.
"""

from .errors import FrontendError, UnsupportedLayerError
from .importer import import_model, verify_graph
from .passes import check_graph, fold_batchnorm
from .reference import run_float
from .registry import HANDLERS, Method, handler

__all__ = [
    "HANDLERS",
    "FrontendError",
    "Method",
    "UnsupportedLayerError",
    "check_graph",
    "fold_batchnorm",
    "handler",
    "import_model",
    "run_float",
    "verify_graph",
]
