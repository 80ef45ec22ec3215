"""Pooch registry files (``<dataset>.txt``) and metadata (``datasets.json``) of the islteach data sets.

Installed as the subpackage ``islteach.data_registry``; generated from the data
manifests by ``scripts/make_registry.py``. Read through :mod:`islteach.data`.
"""
