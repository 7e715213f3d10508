"""A scrolling container whose keys each scroll, however fast they come.

Textual's containers scroll by a line or a page from where the last scroll was asked to end,
but only after the next screen refresh: the keys that arrive before it (a held key, several
typed fast) all start from the same place, so ten Downs moved the help one line. `KeyScroll`
scrolls at once, each key from where the one before it left the view.
"""

from __future__ import annotations

from textual.actions import SkipAction
from textual.containers import VerticalScroll


class KeyScroll(VerticalScroll):
    """A `VerticalScroll` whose line, page, Home and End keys scroll at once."""

    def _scroll_by(self, lines: float) -> None:
        if not self.allow_vertical_scroll:
            raise SkipAction()
        y = max(0.0, min(float(self.max_scroll_y), self.scroll_target_y + lines))
        self.scroll_to(y=y, animate=False, immediate=True)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height)

    def action_scroll_down(self) -> None:
        self._scroll_by(1)

    def action_scroll_up(self) -> None:
        self._scroll_by(-1)

    def action_page_down(self) -> None:
        self._scroll_by(self._page())

    def action_page_up(self) -> None:
        self._scroll_by(-self._page())

    def action_scroll_home(self) -> None:
        self._scroll_by(-self.scroll_target_y)

    def action_scroll_end(self) -> None:
        self._scroll_by(self.max_scroll_y - self.scroll_target_y)
