"""Live mode: posemu's acquirer on a real socket, its outside oracle, the terminal over TCP."""
