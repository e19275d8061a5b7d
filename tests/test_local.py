"""The local platform keeps the platform contract (tests/contract.py)."""

from __future__ import annotations

import pytest

from tests.contract import Launch, PlatformContract, run_argv


class TestLocalContract(PlatformContract):
    platform = "local"

    @pytest.fixture
    def launch(self, tmp_path, tiny_data_dir):
        count = iter(range(1000))

        def make(overrides, data_dir=tiny_data_dir):
            results = tmp_path / f"results-{next(count)}"
            return Launch(run_argv(self.platform, data_dir, results, overrides), results)

        return make
