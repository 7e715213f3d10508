"""An asyncio MSNP client: the scripted client the tests drive and `msnsniff send` uses."""
