"""The local platform keeps the platform contract (tests/contract.py)."""

from __future__ import annotations

import pytest

from tests.contract import PlatformContract, run_here_launcher


class TestLocalContract(PlatformContract):
    platform = "local"

    @pytest.fixture
    def launch(self, tmp_path, tiny_data_dir):
        return run_here_launcher(self.platform, tmp_path, tiny_data_dir)
