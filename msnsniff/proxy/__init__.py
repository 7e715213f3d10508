"""The transparent MSNP proxy: relays client and server byte for byte (switchboards too),
rewriting only the addresses in XFR and RNG, and dissects a copy of everything live."""
