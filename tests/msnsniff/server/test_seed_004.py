"""Seed 004's contact-list examples, line for line, against the reference server.

Each test sets the account's state directly in the store (list version, groups, contacts) so
the versions and ids match the seed's numbers, logs in over real sockets and plays the seed's
`>>>`/`<<<` lines; `<o>` is the seed's "Server Closes Connection".
"""

from __future__ import annotations

from pathlib import Path

from msnsniff.server.app import ReferenceServer
from msnsniff.server.model import Contact
from msnsniff.server.store import Store
from tests.msnsniff.server.scenario import OTHER_PASSWORD, exchange, logged_in_raw, run

ME = "mypassport@passport.com"
OTHERS = (
    "example@passport.com", "myname_123@hotmail.com", "user@msn.com", "valid_account@hotmail.com",
    "user123@msn.com", "user321@msn.com", "random_user@randomdomain.com",
)


def seed_store(version: int, groups: dict[int, str] | None = None,
               contacts: tuple[Contact, ...] = ()) -> Store:
    """A store holding seed 004's accounts, with ME at `version` with these groups and lists."""
    store = Store()
    me = store.add_account(ME, OTHER_PASSWORD)
    for other in OTHERS:
        store.add_account(other, "pw")
    with store.transaction():
        me.version = version
        store.save_account(me)
        for gid, name in (groups or {}).items():
            me.groups[gid] = name
            store.save_group(me, gid)
        for c in contacts:
            store.save_contact(me, c)
    return store


def play(store: Store, script: str, *, sync: bool = True) -> None:
    async def test(server: ReferenceServer) -> None:
        conn = await logged_in_raw(server, ME)
        if sync:
            acc = server.store.account(ME)
            assert acc is not None
            await exchange(conn, f">>> SYN 9 {acc.version}\n<<< SYN 9 {acc.version}")
        await exchange(conn, script)

    run(test, store=store)


def test_adding_users() -> None:
    play(seed_store(1199, {1: "Friends"}), """
        >>> ADD 18 AL a@b a@b
        <<< 201 18
        >>> ADD 19 FL non_existent_account@passport.com non_existent_account@passport.com
        <<< 205 19
        >>> ADD 20 AL example@passport.com example@passport.com
        <<< ADD 20 AL 1200 example@passport.com example@passport.com
        >>> ADD 21 BL example@passport.com example@passport.com
        <<< 219 21
        >>> ADD 22 AL example@passport.com example@passport.com
        <<< 215 22
        >>> ADD 23 FL myname_123@hotmail.com myname_123@hotmail.com 1
        <<< ADD 23 FL 1201 myname_123@hotmail.com myname_123@hotmail.com 1
        <<< BPR 1201 myname_123@hotmail.com PHH
        <<< BPR 1201 myname_123@hotmail.com PHW
        <<< BPR 1201 myname_123@hotmail.com PHM
        <<< BPR 1201 myname_123@hotmail.com MOB N
        >>> ADD 24 FL user@msn.com user@msn.com 15
        <<< 224 24
        >>> ADD 25 RL user@msn.com user@msn.com
        <o>
    """)


def test_removing_users() -> None:
    store = seed_store(1201, {1: "Friends", 3: "Work"}, (
        Contact("myname_123@hotmail.com", "myname_123@hotmail.com", 1, [1]),
        Contact("user@msn.com", "user@msn.com", 1 | 2, [0, 1]),
        Contact("user321@msn.com", "user321@msn.com", 1, [0]),
    ))
    play(store, """
        >>> REM 26 AL a@b
        <<< 216 26
        >>> REM 27 FL non_existent_account@passport.com
        <<< 216 27
        >>> REM 28 FL valid_account@hotmail.com
        <<< 216 28
        >>> REM 29 FL user123@msn.com 15
        <<< 224 29
        >>> REM 30 FL user321@msn.com 3
        <<< 225 30
        >>> REM 31 FL myname_123@hotmail.com
        <<< REM 31 FL 1202 myname_123@hotmail.com
        >>> REM 32 FL user@msn.com 1
        <<< REM 32 FL 1203 user@msn.com 1
        >>> REM 33 AL user@msn.com
        <<< REM 33 AL 1204 user@msn.com
        >>> REM 34 RL user@msn.com
        <o>
    """)


def test_moving_users_between_groups() -> None:
    store = seed_store(1204, {1: "Friends", 2: "Family"}, (
        Contact("user@msn.com", "user@msn.com", 1, [1]),
    ))
    play(store, """
        >>> REM 35 FL user@msn.com 1
        >>> ADD 36 FL user@msn.com user@msn.com 2
        <<< REM 35 FL 1205 user@msn.com 1
        <<< ADD 36 FL 1206 user@msn.com user@msn.com 2
    """, sync=False)


def test_blocking_users() -> None:
    store = seed_store(3052, contacts=(Contact("user@msn.com", "user@msn.com", 2 | 8),))
    play(store, """
        >>> REM 27 AL user@msn.com
        <<< REM 27 AL 3053 user@msn.com
        >>> ADD 28 BL user@msn.com user@msn.com
        <<< ADD 28 BL 3054 user@msn.com user@msn.com
    """)


def test_renaming_users() -> None:
    play(seed_store(3054), """
        >>> REA 101 random_user@randomdomain.com nickname
        <<< 216 101
        >>> REA 102 mypassport@passport.com msn%20help
        <<< 209 102
        >>> REA 103 mypassport@passport.com new%20name
        <<< REA 103 3055 mypassport@passport.com new%20name
        >>> REA 104 mypassport@passport.com %4DSN%20SUCKS
        <<< REA 104 3056 mypassport@passport.com %4DSN%20SUCKS
        >>> REA 105 random_user@randomdomain.com msn
        <<< 209 105
    """)


def test_adding_groups() -> None:
    sixty_two = "this%20group's%20name%20is%20sixty%20two%20bytes%20in%20length"
    assert len(sixty_two) == 62
    play(seed_store(4028, {1: "a", 2: "b", 3: "c"}), f"""
        >>> ADG 37 {sixty_two} 0
        <<< 229 37
        >>> ADG 38 My%20New%20Group 0
        <<< ADG 38 4029 My%20New%20Group 4 0
        >>> ADG 39 other 7
        <<< ADG 39 4030 other 5 7
    """)


def test_thirty_first_group() -> None:
    play(seed_store(10, {g: f"g{g}" for g in range(1, 30)}), """
        >>> ADG 39 thirtyfirst%20group 0
        <<< 223 39
    """)


def test_removing_groups() -> None:
    play(seed_store(4029, {4: "My%20New%20Group"}), """
        >>> RMG 40 4
        <<< RMG 40 4030 4
        >>> RMG 41 4
        <<< 224 41
        >>> RMG 42 0
        <<< 230 42
    """)


def test_renaming_groups() -> None:
    play(seed_store(4030, {3: "Old"}), """
        >>> REG 43 3 My%20New%20Name 0
        <<< REG 43 4031 3 My%20New%20Name 0
        >>> REG 44 20 NewName 0
        <<< 224 44
        >>> REG 46 0 Renamed%20Zero 0
        <<< REG 46 4032 0 Renamed%20Zero 0
        >>> REG 45 30 NewName 0
        <o>
    """)


def test_long_nickname_disconnects() -> None:
    nick = "%41" * 129 + "x"  # 388 bytes URL-encoded
    play(seed_store(1), f"""
        >>> ADD 2 AL user@msn.com {"%41" * 129}
        <<< ADD 2 AL 2 user@msn.com {"%41" * 129}
        >>> ADD 3 FL example@passport.com {nick}
        <o>
    """)


def test_long_group_rename_disconnects() -> None:
    play(seed_store(1, {1: "g"}), f"""
        >>> REG 2 1 {"a" * 128} 0
        <<< REG 2 2 1 {"a" * 128} 0
        >>> REG 3 1 {"a" * 129} 0
        <o>
    """)


def test_long_own_nickname_on_rea_disconnects() -> None:
    play(seed_store(1), f"""
        >>> REA 2 {ME} {"%41" * 129}
        <<< REA 2 2 {ME} {"%41" * 129}
        >>> REA 3 {ME} {"%41" * 129}x
        <o>
    """)


def test_a_full_list_gets_210() -> None:
    store = seed_store(1)

    async def test(server: ReferenceServer) -> None:
        conn = await logged_in_raw(server, ME)
        await exchange(conn, """
            >>> ADD 2 AL example@passport.com example@passport.com
            <<< ADD 2 AL 2 example@passport.com example@passport.com
            >>> ADD 3 AL user@msn.com user@msn.com
            <<< 210 3
            >>> ADD 4 FL user@msn.com user@msn.com
            <<< ADD 4 FL 3 user@msn.com user@msn.com
        """)

    run(test, store=store, max_contacts=1)


def test_a_contact_added_before_msnp7_is_in_group_0_afterwards() -> None:
    """An FL contact added in MSNP2-6 (no groups in the ADD) is listed in group 0 by a
    later MSNP7+ SYN, so group 0 must hold it: the server answered REM FL x 0 with 225 (not
    in the group) and ADD FL x x 0 with success instead of 215."""

    bob = "bob@example.com"

    async def test(server: ReferenceServer) -> None:
        old = await logged_in_raw(server, "carol@example.com", 5)
        await exchange(old, f">>> ADD 5 FL {bob} Bob\n<<< ADD 5 FL 1 {bob} Bob")
        new = await logged_in_raw(server, "carol@example.com", 7)
        await exchange(new, f"""
            >>> ADD 5 FL {bob} Bob 0
            <<< 215 5
            >>> REM 6 FL {bob} 0
            <<< REM 6 FL 2 {bob} 0
            >>> REM 7 FL {bob}
            <<< 216 7
        """)

    run(test)


def test_an_fl_contact_stored_without_groups_loads_in_group_0(tmp_path: Path) -> None:
    """Databases written before every FL contact got a group keep contacts with none."""
    db = tmp_path / "old.db"
    store = Store(db)
    acc = store.add_account("carol@example.com", "pw")
    store.add_account("bob@example.com", "pw")
    with store.transaction():
        store.save_contact(acc, Contact("bob@example.com", "Bob", 1, []))
    store.close()
    again = Store(db)
    loaded = again.account("carol@example.com")
    assert loaded is not None and loaded.contacts["bob@example.com"].groups == [0]
    again.close()
