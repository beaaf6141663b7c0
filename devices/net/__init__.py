"""The network between terminal and acquirer."""
