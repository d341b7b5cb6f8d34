"""HTTP routes: each parses the request, calls one service, shapes the answer."""
