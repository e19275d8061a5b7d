"""The local platform: data from a folder or the official mirrors, results only on disk."""

from __future__ import annotations

from .base import Adapter


class LocalAdapter(Adapter):
    name = "local"
    description = "this machine; results only under results/"


ADAPTER = LocalAdapter
