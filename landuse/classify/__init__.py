"""Classifiers: interchangeable backends behind one protocol (see :mod:`landuse.classify.base`)."""

from landuse.classify.base import Classifier, load_classifier

__all__ = ["Classifier", "load_classifier"]
