"""Replay and mock: re-drive a recorded client against a server (`msnsniff replay`) and serve
a recorded server side to a client (`msnsniff mock`)."""
