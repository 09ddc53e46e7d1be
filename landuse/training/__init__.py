"""Labelled datasets, local training and export, evaluation."""
