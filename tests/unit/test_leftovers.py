"""Which leftovers a cleanup removes; a dry run lists exactly the same selection."""

from __future__ import annotations

from pytest_vlanlb.lab import Leftover, select_leftovers

DEAD = Leftover("container", "vlb-111111-a", "111111", kept=False)
KEPT = Leftover("container", "vlb-222222-a", "222222", kept=True)
LINK = Leftover("link", "vlb111111v10", "111111", kept=False)


def test_a_plain_cleanup_leaves_kept_labs_alone():
    assert select_leftovers([DEAD, KEPT, LINK]) == [DEAD, LINK]


def test_kept_labs_go_with_kept_or_by_run_id():
    assert select_leftovers([DEAD, KEPT], include_kept=True) == [DEAD, KEPT]
    assert select_leftovers([DEAD, KEPT, LINK], run_id="222222") == [KEPT]
    assert select_leftovers([DEAD, KEPT, LINK], run_id="111111") == [DEAD, LINK]
