"""Load drivers and clients: everything that talks to a broker, and starts one."""
