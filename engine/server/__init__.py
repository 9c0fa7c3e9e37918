"""Sockets: the event loop, connections, dispatch and backpressure; `kbench broker`."""
