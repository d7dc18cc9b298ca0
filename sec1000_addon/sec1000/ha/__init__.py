"""Home Assistant adapter: client (WebSocket + REST), Supervisor endpoints, and the bridge."""
