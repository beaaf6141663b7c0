"""The simulation kit: simpy queues and the agenda of listed instants."""
