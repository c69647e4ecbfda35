"""The worker's views keep nothing that grows with use."""

from __future__ import annotations

from server import views
from server.views import Inspector
from tests.server.tiny import tiny_dataset


def test_the_test_image_pngs_kept_are_bounded(monkeypatch):
    monkeypatch.setattr(views, "MAX_CACHED_PNGS", 4)
    inspector = Inspector(tiny_dataset(test=40))
    for position in range(40):                  # a presenter pinning image after image
        assert inspector._png(position) == inspector._png(position)
        assert len(inspector._pngs) <= 4
