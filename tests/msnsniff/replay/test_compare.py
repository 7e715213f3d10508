"""The replay report's side-by-side rendering of a difference."""

from __future__ import annotations

from msnsniff.replay.compare import WIDTH, _side_by_side


def test_a_frame_only_one_side_has_does_not_shift_the_rest() -> None:
    """The reference server sends PRP lines Escargot did not: they face (nothing), and the
    LSG and LST lines after them still meet their recorded twins, unmarked."""
    recorded = [("SYN # v 1 1",), ("LSG # Other%20Contacts 0",), ("LST a@b.c A 11 0",)]
    replayed = [("SYN # v 1 1",), ("PRP PHH",), ("PRP PHW",), ("LSG # Other%20Contacts 0",),
                ("LST a@b.c A 11 0",)]  # fmt: skip
    lines = _side_by_side(recorded, replayed)
    marked = [line for line in lines if line.startswith("  *")]
    assert [line.split("|")[1].strip() for line in marked] == ["PRP PHH", "PRP PHW"]
    assert all(line.split("|")[0].strip() == "* (nothing)" for line in marked)
    assert "    LSG # Other%20Contacts 0" in "\n".join(lines)


def test_a_long_difference_is_shown_whole() -> None:
    url = "http://download.microsoft.com/download/" + "x" * WIDTH
    lines = _side_by_side([(f"CVR # 1 {url}/a.exe",)], [(f"CVR # 1 {url}/b.exe",)])
    assert lines[1] == f"  * CVR # 1 {url}/a.exe"
    assert lines[2].endswith(f"| CVR # 1 {url}/b.exe") and "…" not in "".join(lines)


def test_a_payload_line_only_one_side_has_does_not_shift_the_lines_after_it() -> None:
    """The reference server's profile has a `kv:` line Escargot's has not: it faces nothing,
    and MSPAuth, ClientIP and ClientPort after it, equal on both sides, are not marked."""
    recorded = [("MSG Hotmail Hotmail <length>", "Flags: 1", "MSPAuth: <ticket>",
                 "ClientIP: <address>", "ClientPort: <port>")]  # fmt: skip
    replayed = [("MSG Hotmail Hotmail <length>", "Flags: 1027", "kv: <kv>", "MSPAuth: <ticket>",
                 "ClientIP: <address>", "ClientPort: <port>")]  # fmt: skip
    lines = _side_by_side(recorded, replayed)
    marked = [[side.strip() for side in line[3:].split("|")] for line in lines
              if line.startswith("  *")]  # fmt: skip
    assert marked == [["Flags: 1", "Flags: 1027"], ["", "kv: <kv>"]], lines
    assert not any("MSPAuth" in line for line in lines)  # equal: not repeated


def test_lines_that_differ_only_in_trailing_space_show_it() -> None:
    """Seed 003's profile writes `PostalCode: ` (a space after the colon), Escargot's
    `PostalCode:`: the pair is marked different, so the space must be seen, not a `*` beside
    two lines that look the same."""
    lines = _side_by_side([("MSG Hotmail Hotmail <length>", "PostalCode:")],
                          [("MSG Hotmail Hotmail <length>", "PostalCode: ")])  # fmt: skip
    (marked,) = [line for line in lines if line.startswith("  *")]
    left, right = (side.strip() for side in marked[3:].split("|"))
    assert left == "PostalCode:" and right == "PostalCode:\\x20"
    # a line the other side has not, or one that differs anyway, is left as it is
    lines = _side_by_side([("MSG Hotmail Hotmail <length>", "Gender: ")],
                          [("MSG Hotmail Hotmail <length>", "Gender: f", "Age: ")])  # fmt: skip
    assert [line.split("|")[1].strip() for line in lines if line.startswith("  *")] == [
        "Gender: f", "Age:"]
    assert "\\x20" not in "".join(lines)
