"""landuse: land-use tracking from aerial imagery on a stable 224 m plot grid."""

from landuse.errors import LanduseError

__version__ = "0.1.0"

__all__ = ["LanduseError", "__version__"]
