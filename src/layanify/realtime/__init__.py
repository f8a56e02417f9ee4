"""Real-time events: a broker (in-process or Redis Streams) and the Server-Sent Events stream fed by it."""
