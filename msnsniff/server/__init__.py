"""The reference MSNP server: dispatch, notification and switchboard servers in one process.

It answers the way seeds 003 and 004 and the public references say MSN did, keeps accounts
and contact lists in SQLite, and is the default peer for the proxy, replay and the tests.
"""
